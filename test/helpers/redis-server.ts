/**
 * Starts a real redis-server for tests on a free loopback port (redis-memory-server, using the
 * system binary `/usr/bin/redis-server`: it never downloads), and stops, kills or restarts it.
 *
 * ```ts
 * let server: RedisServer;
 * before(async () => { server = await startRedisServer(); });
 * after(async () => { await server.stop(); });
 * ```
 */

import { existsSync } from 'node:fs';
import { RedisMemoryServer } from 'redis-memory-server';

/** A redis-server started by {@link startRedisServer}. */
export interface RedisServer {
  /** `127.0.0.1`. */
  readonly host: string;
  /** Its port; kept across {@link RedisServer.restart}. */
  readonly port: number;
  /** `redis://127.0.0.1:port`. */
  readonly url: string;
  /** Whether the server process is running. */
  readonly running: boolean;
  /** Kills the server with SIGKILL, as a crash would (no shutdown); resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts the server again on the same port, empty, after {@link kill} or {@link stop}. */
  restart(): Promise<void>;
  /** Stops the server (SIGINT, then SIGKILL); idempotent. */
  stop(): Promise<void>;
}

const BINARY = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path)) ?? 'redis-server';

function create(port: number | undefined, args: readonly string[]): Promise<RedisMemoryServer> {
  return RedisMemoryServer.create({
    binary: { systemBinary: BINARY },
    instance: { ip: '127.0.0.1', ...(port === undefined ? {} : { port }), args: [...args] },
  });
}

/**
 * Starts redis-server on `port` (default: a free one) with no persistence, plus `args`
 * (redis-server command-line options such as `['--maxmemory', '10mb']`).
 */
export async function startRedisServer(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  const args = options.args ?? [];
  const server = await create(options.port, args);
  const port = await server.getPort();
  const host = '127.0.0.1';
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    get running() {
      const info = server.getInstanceInfo();
      const child = info ? info.childProcess : undefined;
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    async kill() {
      const info = server.getInstanceInfo();
      const child = info ? info.childProcess : undefined;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
        child.kill('SIGKILL');
        await exited;
      }
      await server.stop(); // cleans up the watchdog process and the temporary folder
    },
    async restart() {
      await server.stop();
      // The same RedisMemoryServer starts on the port it remembers (a new one would not:
      // get-port keeps recently returned ports locked for a while).
      await server.start();
      if ((await server.getPort()) !== port) throw new Error(`redis-server restarted on another port than ${port}`);
    },
    async stop() {
      await server.stop();
    },
  };
}
