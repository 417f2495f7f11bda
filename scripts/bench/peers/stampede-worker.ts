/**
 * One process of the cross-process stampede test, forked by `stampede.ts`:
 * `stampede-worker.ts <library name> <redis port> <run id> <key> <callers>`.
 *
 * It builds the library, opens its connections with one call on another key, says `ready`,
 * and on `go` fires `callers` concurrent calls for one cold key whose function takes 50 ms and
 * counts itself with a Redis INCR. It then reports, in milliseconds since the epoch, when it
 * started, when each caller had its value and when each of its own computations ended.
 */

import { Redis } from 'ioredis';
import { STAMPEDE_LIBRARIES, value } from './libraries.js';

/** What a worker sends its parent once its callers are done. */
export interface StampedeReport {
  readonly type: 'done';
  /** When it fired its callers. */
  readonly startedAt: number;
  /** When each caller had its value. */
  readonly valuesAt: number[];
  /** When each computation run in this process ended. */
  readonly computedAt: number[];
  /** Callers that got a wrong value or an error. */
  readonly failures: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => {
    setTimeout(resolve, ms);
  });

const [name, portText, runId, keyText, callersText] = process.argv.slice(2);
const factory = STAMPEDE_LIBRARIES.find((f) => f.name === name);
if (factory === undefined || process.send === undefined) throw new Error(`stampede-worker: unknown library ${String(name)} or no IPC`);
const send = process.send.bind(process);
const port = Number(portText);
const key = Number(keyText);
const callers = Number(callersText);

const counter = new Redis(port, '127.0.0.1');
const computedAt: number[] = [];
const library = factory.make({ redisPort: port, memcachedPort: 0 }, async (i) => {
  if (i === key) await counter.incr(`stampede:${String(runId)}`);
  await sleep(50);
  if (i === key) computedAt.push(now());
  return value(i);
});

await library.get(key + 1 + process.pid, false); // connect
await counter.ping();
send({ type: 'ready' });

process.on('message', (message: { type: string }) => {
  if (message.type !== 'go') return;
  void (async () => {
    const startedAt = now();
    const valuesAt: number[] = [];
    let failures = 0;
    await Promise.all(
      Array.from({ length: callers }, async () => {
        try {
          const got = await library.get(key, false);
          if (got !== value(key)) failures++;
        } catch {
          failures++;
        }
        valuesAt.push(now());
      }),
    );
    const report: StampedeReport = { type: 'done', startedAt, valuesAt, computedAt, failures };
    send(report, () => {
      void library.close().finally(() => {
        counter.disconnect();
        process.exit(0);
      });
    });
  })();
});
