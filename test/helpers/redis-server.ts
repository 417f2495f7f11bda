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

import type { ChildProcess } from 'node:child_process';
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
  /** Whether the server process is running (paused counts as running). */
  readonly running: boolean;
  /** The redis-server process id, while it runs. */
  readonly pid: number | undefined;
  /** Whether the process is stopped by {@link RedisServer.pause}. */
  readonly paused: boolean;
  /**
   * Freezes the server with SIGSTOP, as a hung host would: connections stay open, nothing is
   * answered, commands queue in the socket buffers until {@link RedisServer.resume}.
   */
  pause(): void;
  /** Lets a paused server run again (SIGCONT): it answers what queued meanwhile. Idempotent. */
  resume(): void;
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
 * (redis-server command-line options such as `['--maxmemory', '10mb']` or
 * `['--replicaof', '127.0.0.1', '6379']`). Kept across {@link RedisServer.restart}.
 */
export async function startRedisServer(options: { port?: number; args?: readonly string[] } = {}): Promise<RedisServer> {
  const args = options.args ?? [];
  const server = await create(options.port, args);
  const port = await server.getPort();
  const host = '127.0.0.1';
  let paused = false;
  const child = (): ChildProcess | undefined => {
    const info = server.getInstanceInfo();
    return info ? info.childProcess : undefined;
  };
  const alive = (process: ChildProcess | undefined): process is ChildProcess =>
    process !== undefined && process.exitCode === null && process.signalCode === null;
  const signal = (name: NodeJS.Signals): void => {
    const process = child();
    if (!alive(process)) throw new Error(`redis-server on port ${port} is not running`);
    process.kill(name);
  };
  const resume = (): void => {
    if (!paused) return;
    paused = false;
    const process = child();
    if (alive(process)) process.kill('SIGCONT');
  };
  return {
    host,
    port,
    url: `redis://${host}:${port}`,
    get running() {
      const info = server.getInstanceInfo();
      const child = info ? info.childProcess : undefined;
      return child !== undefined && child.exitCode === null && child.signalCode === null;
    },
    get pid() {
      const process = child();
      return alive(process) ? process.pid : undefined;
    },
    get paused() {
      return paused;
    },
    pause() {
      signal('SIGSTOP');
      paused = true;
    },
    resume,
    async kill() {
      const info = server.getInstanceInfo();
      const child = info ? info.childProcess : undefined;
      if (child && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
        child.kill('SIGKILL'); // delivered to a stopped process too
        await exited;
      }
      paused = false;
      await server.stop(); // cleans up the watchdog process and the temporary folder
    },
    async restart() {
      resume();
      await server.stop();
      // The same RedisMemoryServer starts on the port it remembers (a new one would not:
      // get-port keeps recently returned ports locked for a while).
      await server.start();
      if ((await server.getPort()) !== port) throw new Error(`redis-server restarted on another port than ${port}`);
    },
    async stop() {
      resume(); // a stopped process would not handle SIGINT
      await server.stop();
    },
  };
}
