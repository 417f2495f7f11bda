/**
 * `npm run bench`: hermes' own benchmarks, printed as markdown tables with the command that
 * made them. Figures are medians of interleaved rounds; compare them as ratios within one run.
 */
import os from 'node:os';
import { benchInProcess } from './inprocess.js';

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

console.log(`# hermes benchmark\n`);
console.log(`command: npm run bench · node ${process.version} · ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length} · ${new Date().toISOString()}\n`);
console.log('## In-process hit (MemoryBackend), small arguments (a number and a string), 1,000 keys\n');
const rows = await benchInProcess();
console.log('| case | ns per call | × floor |');
console.log('| --- | ---: | ---: |');
for (const row of rows) console.log(`| ${row.case} | ${fmt(row.nsPerCall)} | ${fmt(row.ratio, 2)} |`);
const hit = rows.find((r) => r.case === 'hermes wrap hit (live values)');
if (hit) console.log(`\nTarget: an untagged hit at most 2× the floor — ${hit.ratio <= 2 ? 'met' : 'NOT met'} (${fmt(hit.ratio, 2)}×).`);
