import { spawn } from 'node:child_process';
import { Hermes } from './src/index.js';
import { RedisBackend } from './src/backend/redis/index.js';
const port = 6394;
const srv = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no']);
await new Promise((r) => setTimeout(r, 300));
const mem = new Hermes(undefined, { prefix: 'm' });
const near = new Hermes(RedisBackend, { port, nearCache: process.env.LIVE ? { liveValues: true } : true, prefix: 'n' });
const value = process.env.V === 'str' ? 'user one' : { id: 1, name: 'user one', roles: ['a', 'b'] };
const fm = mem.wrap(async (x: number) => value, { name: 'f', tags: ['a', 'b', 'c'] });
const fn = near.wrap(async (x: number) => value, { name: 'f', tags: ['a', 'b', 'c'] });
await fm(1); await fn(1); await fn(1);
while (near.stats().near!.hits === 0) { await fn(1); await new Promise((r) => setTimeout(r, 10)); }
async function run(f: (x: number) => Promise<unknown>, n: number) { const t0 = performance.now(); for (let i = 0; i < n; i++) await f(1); return (performance.now() - t0) * 1000 / n; }
for (let round = 0; round < 3; round++) {
  const m = await run(fm, 200000); const n = await run(fn, 200000);
  console.log(`mem ${m.toFixed(3)} µs  near ${n.toFixed(3)} µs  ratio ${(n / m).toFixed(2)}`);
}
console.log(near.stats().near);
await near.close(); srv.kill();
