/**
 * Socket-write coalescing: the commands issued in one tick are written to the socket together,
 * in groups of at most `writeBatch`, instead of one write syscall each. Each read is still one
 * request with its own reply; under concurrency the requests share write syscalls, and the
 * server reads them in batches.
 *
 * @module
 */

import { Cluster, type Redis } from 'ioredis';

/** Called before each command is written: corks the socket(s) until the end of the tick. */
export interface WriteCoalescer {
  /** Before a command goes to the client. */
  beforeWrite(): void;
}

/** The coalescer for a client: none with `writeBatch` 1, else one per topology. */
export function createWriteCoalescer(client: Redis | Cluster, writeBatch: number): WriteCoalescer {
  if (writeBatch <= 1) return { beforeWrite: () => undefined };
  return client instanceof Cluster ? new MastersCoalescer(client, writeBatch) : new StreamCoalescer(client, writeBatch);
}

type Stream = Redis['stream'];

/**
 * One connection: the first command of a tick corks the socket, every `writeBatch`-th command
 * flushes it, and the end of the tick (after the microtasks that issue the tick's commands)
 * uncorks it. A lone command is written at the end of its tick, without delay.
 */
class StreamCoalescer implements WriteCoalescer {
  readonly #client: Redis;
  readonly #writeBatch: number;
  /** The socket corked until the next tick, if any. */
  #corked: Stream | undefined;
  #batched = 0;

  constructor(client: Redis, writeBatch: number) {
    this.#client = client;
    this.#writeBatch = writeBatch;
  }

  beforeWrite(): void {
    const stream = this.#client.stream as Stream | undefined;
    if (stream === undefined || stream.destroyed) return;
    if (this.#corked !== stream) {
      this.#corked = stream;
      this.#batched = 1;
      stream.cork();
      process.nextTick(() => {
        if (this.#corked === stream) this.#corked = undefined;
        stream.uncork();
      });
    } else if (++this.#batched >= this.#writeBatch) {
      this.#batched = 0;
      stream.uncork();
      stream.cork();
    }
  }
}

/**
 * A cluster: the first command of a tick corks the socket of every master (a command goes to
 * the one its slot lives on), the end of the tick uncorks them, and every `writeBatch` ×
 * masters commands flushes them.
 */
class MastersCoalescer implements WriteCoalescer {
  readonly #cluster: Cluster;
  readonly #writeBatch: number;
  /** The masters' sockets corked until the next tick, if any. */
  #corked: Stream[] | undefined;
  #batched = 0;

  constructor(cluster: Cluster, writeBatch: number) {
    this.#cluster = cluster;
    this.#writeBatch = writeBatch;
  }

  beforeWrite(): void {
    const corked = this.#corked;
    if (corked === undefined) {
      const streams: Stream[] = [];
      for (const node of this.#cluster.nodes('master')) {
        const stream = node.stream as Stream | undefined;
        if (stream === undefined || stream.destroyed) continue;
        stream.cork();
        streams.push(stream);
      }
      this.#corked = streams;
      this.#batched = 1;
      process.nextTick(() => {
        this.#corked = undefined;
        for (const stream of streams) stream.uncork();
      });
    } else if (++this.#batched >= this.#writeBatch * Math.max(1, corked.length)) {
      this.#batched = 0;
      for (const stream of corked) {
        stream.uncork();
        stream.cork();
      }
    }
  }
}
