/**
 * A TCP proxy in front of the chaos run's redis-server, in a worker thread of its own (so that
 * the main thread's load does not slow what it forwards), that can *stall* the subscriber
 * connections: what the server sends them is held for a while, then delivered in order — a
 * silent network failure of the connection that carries a near-cache's invalidations, which only
 * its heartbeat can notice. A connection counts as a subscriber once it has sent
 * `SUBSCRIBE __redis__:invalidate`. Everything else is forwarded at once.
 *
 * @module
 */

import net from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** A running stall proxy. */
export interface StallProxy {
  /** The port to connect to. */
  readonly port: number;
  /** Holds what the server sends to subscriber connections for `ms` from now. Resolves with the number of chunks held. */
  stall(ms: number): Promise<number>;
  /** Stops the proxy's thread. */
  close(): Promise<number>;
}

/** Starts the proxy to `127.0.0.1:targetPort` in a worker thread. */
export async function startStallProxy(targetPort: number): Promise<StallProxy> {
  const boot = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(import.meta.url)}); })`;
  const worker = new Worker(boot, { eval: true, workerData: { stallProxy: { targetPort } } });
  const port = await new Promise<number>((resolve, reject) => {
    worker.once('message', (message: { port: number }) => {
      resolve(message.port);
    });
    worker.once('error', reject);
  });
  return {
    port,
    stall: (ms) =>
      new Promise((resolve) => {
        worker.once('message', (message: { held: number }) => {
          resolve(message.held);
        });
        worker.postMessage({ stallMs: ms });
      }),
    close: () => worker.terminate(),
  };
}

/** In the proxy's thread: listens, forwards, and stalls on request. */
function serve(targetPort: number, report: (message: unknown) => void, onStall: (handler: (ms: number) => void) => void): void {
  let stalledUntil = 0;
  /** The subscriber connections' held chunks, released when the stall ends. */
  const held = new Set<{ socket: net.Socket; chunks: Buffer[] }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let subscriber = false;
    const queue = { socket: client, chunks: [] as Buffer[] };
    client.on('data', (chunk: Buffer) => {
      if (!subscriber && chunk.includes('__redis__:invalidate')) subscriber = true;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (subscriber && (Date.now() < stalledUntil || queue.chunks.length > 0)) {
        queue.chunks.push(chunk);
        held.add(queue);
      } else {
        client.write(chunk);
      }
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      held.delete(queue);
    };
    for (const socket of [client, upstream]) {
      socket.on('error', close);
      socket.on('close', close);
    }
  });
  onStall((ms) => {
    stalledUntil = Date.now() + ms;
    setTimeout(() => {
      let chunks = 0;
      for (const queue of held) {
        chunks += queue.chunks.length;
        for (const chunk of queue.chunks) queue.socket.write(chunk);
        queue.chunks = [];
      }
      held.clear();
      report({ held: chunks });
    }, ms);
  });
  server.listen(0, '127.0.0.1', () => {
    report({ port: (server.address() as net.AddressInfo).port });
  });
}

const data = (isMainThread ? undefined : workerData) as { stallProxy?: { targetPort: number } } | undefined;
if (data?.stallProxy !== undefined && parentPort !== null) {
  const port = parentPort;
  serve(
    data.stallProxy.targetPort,
    (message) => {
      port.postMessage(message);
    },
    (handler) => {
      port.on('message', (message: { stallMs: number }) => {
        handler(message.stallMs);
      });
    },
  );
}
