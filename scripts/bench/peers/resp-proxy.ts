/**
 * A TCP proxy in front of redis-server that parses RESP going to the server and counts what
 * clients send: top-level commands by name, and round trips.
 *
 * Definitions (per connection, client → server only):
 * - a **command** is one top-level RESP array (or inline command line) the client sends;
 *   pipelined commands count one each, and so do MULTI and EXEC;
 * - a **round trip** is a burst of bytes the client writes after the server last wrote to that
 *   connection (or after the connection opened). A client that waits for each reply makes one
 *   round trip per command; commands written together before any reply make one round trip.
 *   Pushes on a subscriber connection (pub/sub messages) make no round trip, since the client
 *   writes nothing in reply.
 */

import { startTcpProxy } from '../../../test/helpers/tcp-proxy.js';

/** Counts of what went through a {@link RespCountingProxy} towards the server. */
export interface RespCounts {
  /** Commands by lower-case name (`get`, `evalsha`, `set`, …). */
  readonly commands: Map<string, number>;
  /** Round trips, as defined in this module's documentation. */
  roundTrips: number;
  /** TCP reads the proxy made from clients (a lower bound of the client's write calls). */
  chunks: number;
}

/** A running proxy. */
export interface RespCountingProxy {
  /** The port to give the client, on 127.0.0.1. */
  readonly port: number;
  /** Live counts; {@link RespCountingProxy.reset} clears them. */
  readonly counts: RespCounts;
  /** Total commands since the last reset. */
  commands(): number;
  /** Clears the counts. */
  reset(): void;
  /** Stops listening and drops the connections. */
  close(): Promise<void>;
}

/**
 * An incremental RESP request parser: feed it the client's bytes, it calls `onCommand` with
 * the lower-case name of each complete top-level command.
 */
class RespRequestParser {
  #buffer: Buffer = Buffer.alloc(0);
  readonly #onCommand: (name: string) => void;

  constructor(onCommand: (name: string) => void) {
    this.#onCommand = onCommand;
  }

  feed(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const consumed = this.#parseOne();
      if (consumed === 0) break;
      this.#buffer = this.#buffer.subarray(consumed);
    }
  }

  /** Parses one command at the start of the buffer; returns the bytes it used, 0 if incomplete. */
  #parseOne(): number {
    const buf = this.#buffer;
    if (buf.length === 0) return 0;
    const eol = buf.indexOf('\r\n');
    if (eol < 0) return 0;
    if (buf[0] !== 0x2a /* '*' */) {
      // Inline command: one line, words separated by spaces.
      const line = buf.toString('latin1', 0, eol).trim();
      if (line.length > 0) this.#onCommand((line.split(' ')[0] ?? '').toLowerCase());
      return eol + 2;
    }
    const count = Number(buf.toString('latin1', 1, eol));
    let offset = eol + 2;
    let name = '';
    for (let i = 0; i < count; i++) {
      const lineEnd = buf.indexOf('\r\n', offset);
      if (lineEnd < 0) return 0;
      const length = Number(buf.toString('latin1', offset + 1, lineEnd));
      const start = lineEnd + 2;
      if (buf.length < start + length + 2) return 0;
      if (i === 0) name = buf.toString('latin1', start, start + length).toLowerCase();
      offset = start + length + 2;
    }
    this.#onCommand(name);
    return offset;
  }
}

/**
 * Starts a RESP-counting proxy to redis-server on `targetPort` (127.0.0.1). With
 * `parseResp: false` it forwards any protocol and counts only round trips and chunks (in front
 * of memcached, for example).
 */
export async function startRespCountingProxy(targetPort: number, options: { parseResp?: boolean } = {}): Promise<RespCountingProxy> {
  const parseResp = options.parseResp ?? true;
  const counts: RespCounts = { commands: new Map(), roundTrips: 0, chunks: 0 };
  const proxy = await startTcpProxy(targetPort, () => {
    let serverSpokeLast = true;
    const parser = new RespRequestParser((name) => {
      counts.commands.set(name, (counts.commands.get(name) ?? 0) + 1);
    });
    return {
      fromClient(chunk: Buffer) {
        counts.chunks++;
        if (serverSpokeLast) {
          counts.roundTrips++;
          serverSpokeLast = false;
        }
        if (parseResp) parser.feed(chunk);
      },
      fromServer() {
        serverSpokeLast = true;
      },
    };
  });
  return {
    port: proxy.port,
    counts,
    commands: () => [...counts.commands.values()].reduce((a, b) => a + b, 0),
    reset() {
      counts.commands.clear();
      counts.roundTrips = 0;
      counts.chunks = 0;
    },
    close: () => proxy.close(),
  };
}
