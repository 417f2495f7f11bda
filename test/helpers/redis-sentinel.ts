/**
 * Starts a real Sentinel setup for tests: a primary, one replica and three sentinels
 * monitoring the primary as `name`, all on free loopback ports; `failover()` forces a
 * failover (`SENTINEL FAILOVER`) and waits until the sentinels report the new primary.
 * No persistence; everything lives in a temporary folder removed by `stop()`.
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BINARY = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p)) ?? 'redis-server';
const CLI = ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'].find((p) => existsSync(p)) ?? 'redis-cli';

/** A running Sentinel setup started by {@link startRedisSentinel}. */
export interface RedisSentinelSetup {
  /** The monitored name, for ioredis' `name` option. */
  readonly name: string;
  /** The sentinels, for ioredis' `sentinels` option. */
  readonly sentinels: ReadonlyArray<{ host: string; port: number }>;
  /** The port of the current primary, as the sentinels report it. */
  primaryPort(): Promise<number>;
  /** Forces a failover and resolves with the new primary's port once the sentinels agree. */
  failover(): Promise<number>;
  /** Stops every process and removes the temporary folder; idempotent. */
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(CLI, ['-h', '127.0.0.1', '-p', String(port), ...args]);
  return stdout.trim();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts a primary, a replica and three sentinels monitoring the primary as `name`. */
export async function startRedisSentinel(name = 'hermes'): Promise<RedisSentinelSetup> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-sentinel-'));
  const processes: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      processes.splice(0).map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            child.once('exit', () => {
              resolve();
            });
            child.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  const server = (args: string[]): void => {
    processes.push(spawn(BINARY, args, { stdio: 'ignore' }));
  };
  try {
    const primary = await freePort();
    const replica = await freePort();
    const common = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
    server(['--port', String(primary), ...common]);
    server(['--port', String(replica), ...common, '--replicaof', '127.0.0.1', String(primary)]);
    await until('the replica to sync', async () => (await cli(replica, 'info', 'replication')).includes('master_link_status:up'));
    const sentinels: Array<{ host: string; port: number }> = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const config = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        config,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 5000`,
          '',
        ].join('\n'),
      );
      server([config, '--sentinel']);
      sentinels.push({ host: '127.0.0.1', port });
    }
    const primaryPort = async (): Promise<number> => {
      const reply = await cli(sentinels[0]?.port ?? 0, 'sentinel', 'get-master-addr-by-name', name);
      return Number(reply.split('\n')[1]);
    };
    await until('the sentinels to see the replica and each other', async () => {
      const replies = await Promise.all(sentinels.map((s) => cli(s.port, 'sentinel', 'master', name)));
      return replies.every((r) => /num-slaves\n1\b/.test(r) && /num-other-sentinels\n2\b/.test(r));
    });
    return {
      name,
      sentinels,
      primaryPort,
      async failover() {
        const before = await primaryPort();
        await cli(sentinels[0]?.port ?? 0, 'sentinel', 'failover', name);
        let after = before;
        await until('the failover', async () => {
          after = await primaryPort();
          return after !== before && (await cli(after, 'role')).startsWith('master');
        });
        return after;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
