/**
 * A TCP proxy in front of memcached that parses the text protocol going to the server and
 * counts what the client sends: requests by command, keys fetched, and the TCP chunks written.
 * It is the request count on the wire, not the client's own idea of it.
 */

import { startTcpProxy } from '../helpers/tcp-proxy.js';

/** Counts of what went through a {@link CountingProxy} towards the server. */
export interface WireCounts {
  /** Commands by name (`get`, `gets`, `set`, `add`, `cas`, `delete`...). */
  readonly commands: Record<string, number>;
  /** Keys named by every `get` / `gets` command, in order. */
  readonly getKeys: string[][];
}

/** A running proxy. */
export interface CountingProxy {
  /** The port to give the client, on 127.0.0.1. */
  readonly port: number;
  /** Live counts; {@link reset} clears them. */
  readonly counts: WireCounts;
  /** Total requests (commands of any kind) since the last reset. */
  total(): number;
  /** Clears the counts. */
  reset(): void;
  /** Stops listening and drops the connections. */
  close(): Promise<void>;
}

const STORAGE = new Set(['set', 'add', 'replace', 'append', 'prepend', 'cas']);

/** Starts a counting proxy to memcached on `targetPort`. */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  const counts: { commands: Record<string, number>; getKeys: string[][] } = { commands: {}, getKeys: [] };
  const proxy = await startTcpProxy(targetPort, () => {
    let pending: Buffer = Buffer.alloc(0);
    let skip = 0;
    return {
      fromClient(chunk: Buffer) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        for (;;) {
          if (skip > 0) {
            const n = Math.min(skip, pending.length);
            pending = pending.subarray(n);
            skip -= n;
            if (skip > 0) break;
          }
          const eol = pending.indexOf('\r\n');
          if (eol < 0) break;
          const line = pending.toString('latin1', 0, eol);
          pending = pending.subarray(eol + 2);
          const words = line.split(' ');
          const command = words[0] ?? '';
          counts.commands[command] = (counts.commands[command] ?? 0) + 1;
          if (command === 'get' || command === 'gets') counts.getKeys.push(words.slice(1));
          if (STORAGE.has(command)) skip = Number(words[4]) + 2;
        }
      },
    };
  });
  return {
    port: proxy.port,
    counts,
    total: () => Object.values(counts.commands).reduce((a, b) => a + b, 0),
    reset() {
      for (const key of Object.keys(counts.commands)) counts.commands[key] = 0;
      counts.getKeys.length = 0;
    },
    close: () => proxy.close(),
  };
}
