/**
 * The Redis Cluster benchmark chart (rendered by ./vega.ts), for choosing the `buckets` option:
 * first what the bucket count trades — `clean(tags)` latency against how evenly the entries spread
 * over the masters, the default (64) marked — then hits on the 3-master cluster beside a single
 * node, for hermes' 3-tag hit and the raw EVALSHA of its read script.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { BucketBench, ClusterHitRow } from './cluster.js';
import { compact, renderSvg } from './vega.js';

/** Everything the chart shows; `bench/cluster-data.json` keeps it so the chart can be redrawn. */
export interface ClusterChartData {
  readonly hits: readonly ClusterHitRow[];
  readonly buckets: BucketBench;
  /** The masters of the cluster. */
  readonly masters: number;
  /** The bucket count the cluster hits were measured with (the option's default). */
  readonly defaultBuckets: number;
  /**
   * The run: command, date, machine, as lines of the subtitle (short ones: without a canvas, vega
   * estimates a text's width generously and widens the picture to fit).
   */
  readonly subtitle: readonly string[];
}

/** The hit cases the chart shows (the tables have them all). */
export const CHART_HIT_CASES = ['hermes wrap hit, 3 tags', 'raw EVALSHA read script, 3 tags'] as const;

const PANEL = { width: 300, height: 190 } as const;

/** Renders the chart to an SVG string. */
export async function renderClusterChart({ hits, buckets, masters, defaultBuckets, subtitle }: ClusterChartData): Promise<string> {
  const counts = buckets.rows.map((r) => String(r.buckets));
  const x = {
    field: 'buckets',
    type: 'ordinal',
    sort: counts,
    title: 'buckets (option of RedisBackend)',
    axis: { labelAngle: 0, labelFontSize: 11 },
  } as const;
  // The default count: a pale band behind its column and a label on top.
  const markDefault = (top: number): Record<string, unknown>[] => [
    {
      data: { values: [{ buckets: String(defaultBuckets), top }] },
      mark: { type: 'rule', strokeWidth: 30, color: '#fff3bf' },
      encoding: { x },
    },
    {
      data: { values: [{ buckets: String(defaultBuckets), top, label: 'default' }] },
      mark: { type: 'text', dy: -8, fontSize: 10.5, fontWeight: 'bold', color: '#a6750b' },
      encoding: { x, y: { field: 'top', type: 'quantitative' }, text: { field: 'label' } },
    },
  ];

  const latencyValues = buckets.rows.flatMap((r) => [
    { buckets: String(r.buckets), stat: 'median', ms: r.cleanMedianMs, label: r.cleanMedianMs.toFixed(2) },
    { buckets: String(r.buckets), stat: 'p99', ms: r.cleanP99Ms, label: '' },
  ]);
  const latencyTop = Math.max(...buckets.rows.map((r) => r.cleanP99Ms)) * 1.12;
  const latencyPanel = {
    ...PANEL,
    title: { text: "clean(['t1']) latency, ms", anchor: 'start', fontSize: 13 },
    layer: [
      ...markDefault(latencyTop),
      {
        data: { values: latencyValues },
        mark: { type: 'line', point: true },
        encoding: {
          x,
          y: { field: 'ms', type: 'quantitative', title: 'ms per clean', scale: { domain: [0, latencyTop], nice: false } },
          color: { field: 'stat', type: 'nominal', title: null, scale: { domain: ['median', 'p99'], range: ['#d9480f', '#ced4da'] }, legend: { orient: 'top-left', direction: 'horizontal' } },
        },
      },
      {
        data: { values: latencyValues },
        mark: { type: 'text', dy: -10, fontSize: 10.5 },
        encoding: { x, y: { field: 'ms', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };

  const even = 100 / masters;
  const spreadPanel = {
    ...PANEL,
    title: { text: "largest master's share of the entries, %", anchor: 'start', fontSize: 13 },
    layer: [
      ...markDefault(100),
      {
        data: { values: [{ even, label: `even: ${even.toFixed(1)}%` }] },
        layer: [
          { mark: { type: 'rule', strokeDash: [4, 3], color: '#868e96' }, encoding: { y: { field: 'even', type: 'quantitative' } } },
          { mark: { type: 'text', align: 'right', x: 'width', dy: 9, fontSize: 10, color: '#868e96' }, encoding: { y: { field: 'even', type: 'quantitative' }, text: { field: 'label' } } },
        ],
      },
      {
        data: {
          values: buckets.rows.map((r) => {
            const share = (100 * Math.max(...r.entriesPerMaster)) / buckets.entries;
            return { buckets: String(r.buckets), share, label: `${share.toFixed(1)}%` };
          }),
        },
        layer: [
          {
            mark: { type: 'line', point: true, color: '#4c6ef5' },
            encoding: { x, y: { field: 'share', type: 'quantitative', title: `% of ${buckets.entries.toLocaleString('en-US')} entries`, scale: { domain: [0, 100] } } },
          },
          { mark: { type: 'text', dy: -10, fontSize: 10.5 }, encoding: { x, y: { field: 'share', type: 'quantitative' }, text: { field: 'label' } } },
        ],
      },
    ],
  };

  // The server of the first row (the single node) is the one the others are a share of.
  const servers = [...new Set(hits.map((r) => r.server))];
  const single = servers[0];
  const hitPanel = (title: string): Record<string, unknown> => {
    const rows = hits.filter((r) => r.case === title);
    const top = Math.max(...rows.map((r) => r.opsPerSecond)) * 1.15;
    const values = rows.map((r) => {
      const base = rows.find((s) => s.server === single && s.concurrency === r.concurrency);
      const share = r.server === single || base === undefined ? '' : `\n${((100 * r.opsPerSecond) / base.opsPerSecond).toFixed(0)}%`;
      return { concurrency: `c${r.concurrency}`, server: r.server, ops: r.opsPerSecond, label: `${compact(r.opsPerSecond)}${share}` };
    });
    const xc = { field: 'concurrency', type: 'nominal', sort: [...new Set(values.map((v) => v.concurrency))], title: 'concurrent callers', axis: { labelAngle: 0 } };
    return {
      ...PANEL,
      width: 360,
      title: { text: title, anchor: 'start', fontSize: 13 },
      data: { values },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            x: xc,
            xOffset: { field: 'server', sort: servers },
            y: { field: 'ops', type: 'quantitative', title: 'hits per second', scale: { domain: [0, top], nice: false }, axis: { format: '~s' } },
            color: { field: 'server', type: 'nominal', sort: servers, title: null, scale: { range: ['#868e96', '#d9480f'] }, legend: { orient: 'top', direction: 'horizontal' } },
          },
        },
        {
          mark: { type: 'text', baseline: 'bottom', dy: -3, fontSize: 10, lineBreak: '\n' },
          encoding: { x: xc, xOffset: { field: 'server', sort: servers }, y: { field: 'ops', type: 'quantitative' }, text: { field: 'label' } },
        },
      ],
    };
  };

  return renderSvg(
    `hermes on a ${masters}-master Redis Cluster: choosing the buckets option (one run)`,
    [
      ...subtitle,
      `all ${masters + 1} redis-servers and the client share this machine's cores: the figures show what spreading`,
      'the keys over masters costs per call, not what more machines add',
    ],
    {
      vconcat: [
        {
          title: {
            text: 'More buckets: an even spread, but a slower clean(tags)',
            subtitle: [
              'clean(tags) deletes one copy of each tag per bucket; the entries follow the buckets onto the masters',
              'less is better in both panels',
            ],
            anchor: 'start',
            fontSize: 14,
            subtitleFontSize: 11,
          },
          hconcat: [latencyPanel, spreadPanel],
          spacing: 40,
          resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
        },
        {
          title: {
            text: `Hits per second: single node vs ${masters}-master cluster (${defaultBuckets} buckets)`,
            subtitle: 'labels: hits/s, and on the cluster bars the share of the single node (more is better)',
            anchor: 'start',
            fontSize: 14,
            subtitleFontSize: 11,
          },
          hconcat: CHART_HIT_CASES.map(hitPanel),
          spacing: 40,
        },
      ],
      spacing: 36,
      resolve: { scale: { color: 'independent' }, legend: { color: 'independent' } },
    },
  );
}

// `npx tsx scripts/bench/cluster-chart.ts` redraws bench/cluster.svg from bench/cluster-data.json.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const data = JSON.parse(await readFile(new URL('../../bench/cluster-data.json', import.meta.url), 'utf8')) as ClusterChartData;
  await writeFile(new URL('../../bench/cluster.svg', import.meta.url), await renderClusterChart(data));
}
