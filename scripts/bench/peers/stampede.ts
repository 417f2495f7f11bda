/**
 * Stampede across processes: `processes` forked Node processes × `callers` concurrent callers
 * on one cold key whose function takes 50 ms. Counts the computations (a Redis INCR inside the
 * function) and times the last caller's value from the moment the processes were told to go.
 */

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import type { LibraryFactory } from './libraries.js';
import type { StampedeReport } from './stampede-worker.js';

/** The stampede figures of one library. */
export interface StampedeRow {
  readonly library: string;
  readonly processes: number;
  readonly callers: number;
  /** How many times the 50 ms function ran, all processes together. */
  readonly computations: number;
  /** Milliseconds from `go` to the last caller having its value. */
  readonly lastValueMs: number;
  /** Milliseconds from the end of the first computation to the last caller having its value. */
  readonly lagAfterFirstComputationMs: number;
  /** Callers that got an error or a wrong value. */
  readonly failures: number;
}

const WORKER = fileURLToPath(new URL('./stampede-worker.ts', import.meta.url));

function waitFor(child: ChildProcess, type: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string }): void => {
      if (message.type !== type) return;
      child.off('message', onMessage);
      resolve(message);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      reject(new Error(`stampede worker exited with ${String(code)} before '${type}'`));
    });
  });
}

/** Runs the stampede test for one library. `runId` makes the key and the counter unique. */
export async function stampede(factory: LibraryFactory, redisPort: number, admin: Redis, runId: number, processes = 4, callers = 50): Promise<StampedeRow> {
  const key = 7_000_000 + runId * 1000;
  const children = Array.from({ length: processes }, () =>
    fork(WORKER, [factory.name, String(redisPort), String(runId), String(key), String(callers)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  try {
    await Promise.all(children.map((child) => waitFor(child, 'ready')));
    const done = children.map((child) => waitFor(child, 'done') as Promise<StampedeReport>);
    const goAt = performance.timeOrigin + performance.now();
    for (const child of children) child.send({ type: 'go' });
    const reports = await Promise.all(done);
    const computations = Number(await admin.get(`stampede:${runId}`));
    const lastValue = Math.max(...reports.flatMap((r) => r.valuesAt));
    const firstComputation = Math.min(...reports.flatMap((r) => r.computedAt));
    return {
      library: factory.name,
      processes,
      callers,
      computations,
      lastValueMs: lastValue - goAt,
      lagAfterFirstComputationMs: lastValue - firstComputation,
      failures: reports.reduce((sum, r) => sum + r.failures, 0),
    };
  } finally {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }
}
