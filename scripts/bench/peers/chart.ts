/**
 * The peers benchmark chart (rendered by ../vega.ts). One panel per scenario, a bar per library
 * with its throughput and, beside it, the requests it sent per operation; a last panel for the
 * in-process hit in nanoseconds per call.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { compact, renderSvg } from '../vega.js';

/** One bar of a throughput panel. */
export interface ChartBar {
  readonly scenario: string;
  readonly library: string;
  /** Operations per second; `undefined` when the library lacks the feature. */
  readonly opsPerSecond: number | undefined;
  /** Requests on the wire per operation. */
  readonly requestsPerOp: number | undefined;
  /** Why there is no figure. */
  readonly missing: string | undefined;
}

/** One bar of the in-process panel. */
export interface ChartInProcessBar {
  readonly library: string;
  readonly nsPerCall: number;
}

const kind = (library: string): string => (library.startsWith('hermes') ? 'hermes' : library.startsWith('limit') ? 'the limit (raw)' : 'peer');

/** A shorter row label for the chart (the table keeps the full names). */
const shortName = (library: string): string =>
  library
    .replace(/^limit: /, '')
    .replace(' / MGET', '/MGET')
    .replace(' of the read script', '')
    .replace(', auto-pipelined', ' (autopipe)')
    .replace('raw ioredis GET/MGET (autopipe)', 'raw GET/MGET (autopipe)')
    .replace(' / multi-get', '/multi-get')
    .replace('memory + Redis + bus', 'L1 + Redis + bus');

const color = {
  field: 'kind',
  type: 'nominal',
  title: null,
  scale: { domain: ['hermes', 'the limit (raw)', 'peer'], range: ['#d9480f', '#868e96', '#4c6ef5'] },
  legend: { orient: 'top', labelFontSize: 12 },
} as const;

/** Everything the chart shows; `bench/chart-data.json` keeps it so the chart can be redrawn. */
export interface ChartData {
  readonly bars: readonly ChartBar[];
  readonly inProcess: readonly ChartInProcessBar[];
  /** The run: command, date, machine, versions. */
  readonly subtitle: string;
}

/** Renders the chart to an SVG string. */
export async function renderChart({ bars, inProcess, subtitle }: ChartData): Promise<string> {
  const libraries = [...new Set(bars.map((b) => shortName(b.library)))];
  const maxOf = new Map<string, number>();
  for (const b of bars) maxOf.set(b.scenario, Math.max(maxOf.get(b.scenario) ?? 0, b.opsPerSecond ?? 0));
  const values = bars.map((b) => ({
    scenario: b.scenario,
    library: shortName(b.library),
    pad: (maxOf.get(b.scenario) ?? 0) * 1.5,
    kind: kind(b.library),
    ops: b.opsPerSecond ?? 0,
    label:
      b.opsPerSecond === undefined
        ? `n/a: ${b.missing ?? 'not supported'}`
        : `${compact(b.opsPerSecond)}/s · ${b.requestsPerOp === undefined ? '?' : b.requestsPerOp.toFixed(b.requestsPerOp % 1 === 0 ? 0 : 2)} req/op`,
  }));
  const scenarios = [...new Set(bars.map((b) => b.scenario))];
  const throughputPanel = {
    data: { values },
    facet: {
      field: 'scenario',
      type: 'nominal',
      sort: scenarios,
      title: null,
      header: { labelAnchor: 'start', labelOrient: 'top', labelFontSize: 13, labelFontWeight: 'bold' },
    },
    columns: 2,
    spacing: { row: 22, column: 30 },
    spec: {
      width: 330,
      layer: [
        {
          mark: { type: 'bar', height: 11 },
          encoding: {
            y: { field: 'library', type: 'nominal', sort: libraries, title: null, axis: { labelFontSize: 11, labelLimit: 260 } },
            x: { field: 'ops', type: 'quantitative', title: 'operations per second (more is better)', axis: { format: '~s', tickCount: 4 } },
            color,
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4, fontSize: 10.5 },
          encoding: {
            y: { field: 'library', type: 'nominal', sort: libraries },
            x: { field: 'ops', type: 'quantitative' },
            text: { field: 'label' },
          },
        },
        // An invisible mark past the longest bar leaves room for the labels.
        { mark: { type: 'tick', opacity: 0 }, encoding: { x: { field: 'pad', type: 'quantitative', title: null }, y: { field: 'library', type: 'nominal', sort: libraries, title: null } } },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
  const inProcessPanel = {
    title: { text: 'In-process hit, sequential awaited calls (fewer ns is better)', anchor: 'start', fontSize: 13 },
    data: {
      values: inProcess.map((b) => ({
        library: shortName(b.library),
        kind: kind(b.library),
        ns: b.nsPerCall,
        pad: Math.max(...inProcess.map((x) => x.nsPerCall)) * 1.25,
        label: `${b.nsPerCall.toFixed(0)} ns`,
      })),
    },
    width: 330,
    layer: [
      {
        mark: { type: 'bar', height: 11 },
        encoding: {
          y: { field: 'library', type: 'nominal', sort: inProcess.map((b) => shortName(b.library)), title: null, axis: { labelFontSize: 11, labelLimit: 260 } },
          x: { field: 'ns', type: 'quantitative', title: 'nanoseconds per call' },
          color,
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 10.5 },
        encoding: { y: { field: 'library', type: 'nominal', sort: inProcess.map((b) => shortName(b.library)) }, x: { field: 'ns', type: 'quantitative' }, text: { field: 'label' } },
      },
      { mark: { type: 'tick', opacity: 0 }, encoding: { x: { field: 'pad', type: 'quantitative', title: null }, y: { field: 'library', type: 'nominal', sort: inProcess.map((b) => shortName(b.library)), title: null } } },
    ],
  };
  return renderSvg(
    'hermes beside its peers and the raw limit (one run)',
    [subtitle, 'bars: operations per second, more is better (each panel has its own scale) · label: ops/s · requests sent per operation, counted on the wire'],
    { vconcat: [throughputPanel, inProcessPanel], spacing: 28 },
  );
}

// `npx tsx scripts/bench/peers/chart.ts` redraws bench/chart.svg from bench/chart-data.json.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const data = JSON.parse(await readFile(new URL('../../../bench/chart-data.json', import.meta.url), 'utf8')) as ChartData;
  await writeFile(new URL('../../../bench/chart.svg', import.meta.url), await renderChart(data));
}
