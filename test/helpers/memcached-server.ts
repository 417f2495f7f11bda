/**
 * Starts a real memcached for tests on a free loopback port, and stops it.
 * `/usr/bin/memcached` (Debian's package; `scripts/install-servers.sh` installs it).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

/** A memcached started by {@link startMemcached}. */
export interface MemcachedProcess {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** `127.0.0.1:port`. */
  readonly address: string;
  /** Stops it (SIGKILL if it does not exit within a second); resolves once it has exited. */
  stop(): Promise<void>;
}

const BINARY = ['/usr/bin/memcached', '/usr/local/bin/memcached'].find((path) => existsSync(path)) ?? 'memcached';

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * Starts memcached on `port` (default: a free one), TCP only, and waits until it accepts
 * connections. memcached refuses to run as root without `-u`, so as root it runs as `nobody`.
 */
export async function startMemcached(options: { port?: number; extraArgs?: string[] } = {}): Promise<MemcachedProcess> {
  const port = options.port ?? (await freePort());
  const args = ['-l', '127.0.0.1', '-p', String(port), '-U', '0', '-m', '64', ...(options.extraArgs ?? [])];
  if (process.getuid?.() === 0) args.push('-u', 'nobody');
  const child: ChildProcess = spawn(BINARY, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      resolve();
    });
  });
  let failed: Error | undefined;
  child.once('error', (error) => {
    failed = error;
  });
  const deadline = Date.now() + 5000;
  for (;;) {
    if (failed) throw failed;
    if (child.exitCode !== null) throw new Error(`memcached exited with ${child.exitCode}: ${stderr}`);
    if (await accepts(port)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`memcached did not accept connections on port ${port} within 5 s: ${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    port,
    address: `127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
      await exited;
      clearTimeout(timer);
    },
  };
}
