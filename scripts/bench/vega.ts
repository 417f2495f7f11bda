/**
 * What the benchmark charts share: a vega-lite spec compiled and rendered to SVG headless (vega's
 * View renders SVG in Node without a canvas), the page around the panels (title with the run's
 * command, date and machine as subtitle, white background, fonts), short number labels, and the
 * machine line of the results.
 */

import os from 'node:os';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { fmt } from './measure.js';

/** A short throughput label: 950, 1.2k, 65k. */
export const compact = (n: number): string =>
  n >= 10_000 ? `${Math.round(n / 1000)}k` : n >= 1000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0);

/** The machine a run was made on: CPU, cores, memory, OS. */
export function machineLine(): string {
  return `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} cores, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()}`;
}

/**
 * Renders a chart to an SVG string: `body` (the panels: `vconcat`, `hconcat`, `layer`…) under a
 * title whose subtitle lines name the run.
 */
export async function renderSvg(title: string, subtitle: readonly string[], body: Record<string, unknown>): Promise<string> {
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: [...subtitle], anchor: 'start', fontSize: 16, subtitleFontSize: 11 },
    background: 'white',
    padding: 16,
    config: { view: { stroke: null }, axis: { labelFont: 'sans-serif', titleFont: 'sans-serif', labelLimit: 240 }, text: { font: 'sans-serif' } },
    ...body,
  };
  const compiled = vl.compile(spec as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}
