/**
 * Starts a real Redis Cluster for tests: `masters` redis-server processes with
 * `--cluster-enabled yes` on free loopback ports (each port's cluster bus, port + 10000, free
 * too), plus `replicas` replicas of each master, assembled with `redis-cli --cluster create`,
 * and waits until every node reports `cluster_state:ok` and knows every other node, and every
 * replica is in sync with its master. No persistence; everything lives in a temporary folder
 * removed by `stop()`. Also: the slot owners ({@link slotOwners}), a slot migration with its keys
 * ({@link migrateSlots}) and the roles of the nodes ({@link clusterRoles}).
 */

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { type EntryRef, Keyspace } from '../../src/backend/index.js';
import type { RedisBackend } from '../../src/backend/redis/index.js';

const run = promisify(execFile);
const BINARY = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => existsSync(p)) ?? 'redis-server';
const CLI = ['/usr/bin/redis-cli', '/usr/local/bin/redis-cli'].find((p) => existsSync(p)) ?? 'redis-cli';

/** A running cluster started by {@link startRedisCluster}. */
export interface RedisCluster {
  /** The nodes, as ioredis' `Cluster` takes them. */
  readonly nodes: ReadonlyArray<{ host: string; port: number }>;
  /** Stops every node and removes the temporary folder; idempotent. */
  stop(): Promise<void>;
  /** SIGKILLs the node on `port` and resolves once its process has exited. */
  kill(port: number): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => { resolve(false); });
    server.listen(port, '127.0.0.1', () => server.close(() => { resolve(true); }));
  });
}

/** A port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

async function info(port: number, section: string): Promise<string> {
  const { stdout } = await run(CLI, ['-h', '127.0.0.1', '-p', String(port), 'cluster', section]);
  return stdout;
}

/** Kills a node's process; resolves once it has exited. */
function killed(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) { resolve(); return; }
    child.once('exit', () => { resolve(); });
    child.kill('SIGKILL');
  });
}

/**
 * Starts a cluster of `masters` master nodes, each with `options.replicas` replicas (none by
 * default); `nodes` lists the masters first, as `redis-cli --cluster create` assigns them.
 */
export async function startRedisCluster(masters = 3, options: { replicas?: number } = {}): Promise<RedisCluster> {
  const replicas = options.replicas ?? 0;
  const total = masters * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'hermes-cluster-'));
  const taken = new Set<number>();
  const processes: ChildProcess[] = [];
  const byPort = new Map<number, ChildProcess>();
  const nodes: Array<{ host: string; port: number }> = [];
  const stop = async (): Promise<void> => {
    await Promise.all(processes.splice(0).map(killed));
    rmSync(dir, { recursive: true, force: true });
  };
  const kill = async (port: number): Promise<void> => {
    const child = byPort.get(port);
    if (child === undefined) throw new Error(`kill: no cluster node on port ${port}`);
    await killed(child);
  };
  try {
    for (let i = 0; i < total; i++) {
      const port = await freeClusterPort(taken);
      const child = spawn(
        BINARY,
        [
          '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
          '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir,
          '--save', '', '--appendonly', 'no', '--cluster-node-timeout', '2000',
        ],
        { stdio: 'ignore' },
      );
      processes.push(child);
      byPort.set(port, child);
      nodes.push({ host: '127.0.0.1', port });
    }
    for (const { port } of nodes) {
      const deadline = Date.now() + 10_000;
      while (!(await run(CLI, ['-h', '127.0.0.1', '-p', String(port), 'ping']).then((r) => r.stdout.trim() === 'PONG', () => false))) {
        if (Date.now() > deadline) throw new Error(`cluster node ${port} did not start`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await run(CLI, ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(nodes.map((n) => info(n.port, 'info')));
      const roles = await Promise.all(nodes.map((n) => replication(n.port)));
      const synced = roles.filter((r) => r.includes('role:slave') && r.includes('master_link_status:up')).length;
      if (states.every((s) => s.includes('cluster_state:ok') && s.includes(`cluster_known_nodes:${total}`)) && synced === masters * replicas) break;
      if (Date.now() > deadline) throw new Error(`the cluster did not reach cluster_state:ok with ${total} nodes and ${masters * replicas} replicas in sync`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return { nodes, stop, kill };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function replication(port: number): Promise<string> {
  const { stdout } = await run(CLI, ['-h', '127.0.0.1', '-p', String(port), 'info', 'replication']);
  return stdout;
}

/** A node's role as the cluster sees it (CLUSTER NODES on `askPort`). */
export interface NodeRole {
  readonly port: number;
  readonly role: 'master' | 'replica';
  /** A replica's master; a master's own port. */
  readonly master: number;
  /** Flagged `fail` or `fail?` by `askPort`. */
  readonly failing: boolean;
}

/** Every node's role as the node on `askPort` sees it (from CLUSTER NODES). */
export async function clusterRoles(askPort: number): Promise<NodeRole[]> {
  const { stdout } = await run(CLI, ['-h', '127.0.0.1', '-p', String(askPort), 'cluster', 'nodes']);
  const lines = stdout.trim().split('\n').map((line) => line.split(' '));
  const portOf = new Map(lines.map(([id = '', address = '']) => [id, Number(address.split('@')[0]?.split(':')[1])]));
  return lines.map(([id = '', , flags = '', masterId = '']) => {
    const port = portOf.get(id) ?? 0;
    const role = flags.split(',').includes('master') ? 'master' : 'replica';
    return { port, role, master: role === 'master' ? port : (portOf.get(masterId) ?? 0), failing: /(^|,)fail\??(,|$)/.test(flags) };
  });
}

/** An admin connection to one node (no cluster redirections), for the helpers below. */
function adminOf(port: number): Redis {
  return new Redis({ host: '127.0.0.1', port, lazyConnect: false, maxRetriesPerRequest: 1 });
}

/** The master port owning each of the 16384 slots, as `port` (from CLUSTER SLOTS on `askPort`). */
export async function slotOwners(askPort: number): Promise<number[]> {
  const admin = adminOf(askPort);
  try {
    const ranges = await admin.cluster('SLOTS');
    const owners = new Array<number>(16_384).fill(0);
    for (const [start, end, master] of ranges) owners.fill(master?.[1] ?? 0, start, end + 1);
    return owners;
  } finally {
    admin.disconnect();
  }
}

/** What {@link migrateSlots} moved. */
export interface Migration {
  readonly slots: number;
  readonly keys: number;
  /** MIGRATE commands sent (batches of keys). */
  readonly batches: number;
}

/**
 * Moves `slots` with their keys from the master on port `from` to the one on port `to`, as
 * `redis-cli --cluster reshard` does: SETSLOT IMPORTING on the target, MIGRATING on the source,
 * MIGRATE … KEYS in batches of `keysPerBatch` until the slot is empty, then SETSLOT NODE on the
 * target, the source and every other master. `pauseMs` between batches keeps each slot in the
 * migrating state a little longer, for tests that run traffic meanwhile.
 */
export async function migrateSlots(
  cluster: RedisCluster,
  slots: readonly number[],
  from: number,
  to: number,
  options: { keysPerBatch?: number; pauseMs?: number } = {},
): Promise<Migration> {
  const keysPerBatch = options.keysPerBatch ?? 100;
  const pauseMs = options.pauseMs ?? 0;
  const admins = new Map(cluster.nodes.map(({ port }) => [port, adminOf(port)]));
  const source = admins.get(from);
  const target = admins.get(to);
  if (source === undefined || target === undefined) throw new Error(`migrateSlots: no node on port ${from} or ${to}`);
  let keys = 0;
  let batches = 0;
  try {
    const sourceId = await source.cluster('MYID');
    const targetId = await target.cluster('MYID');
    for (const slot of slots) {
      await target.cluster('SETSLOT', slot, 'IMPORTING', sourceId);
      await source.cluster('SETSLOT', slot, 'MIGRATING', targetId);
      for (;;) {
        const batch = await source.cluster('GETKEYSINSLOT', slot, keysPerBatch);
        if (batch.length === 0) break;
        await source.migrate('127.0.0.1', to, '', 0, 5000, 'KEYS', ...batch);
        keys += batch.length;
        batches++;
        if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
      await target.cluster('SETSLOT', slot, 'NODE', targetId);
      await source.cluster('SETSLOT', slot, 'NODE', targetId);
      await Promise.all(
        [...admins].filter(([port]) => port !== from && port !== to).map(([, admin]) => admin.cluster('SETSLOT', slot, 'NODE', targetId)),
      );
    }
    return { slots: slots.length, keys, batches };
  } finally {
    for (const admin of admins.values()) admin.disconnect();
  }
}

/**
 * Where a RedisBackend stores a key the cache names: an entry's or a lock's own, or a tag's
 * copy in the bucket of `entryKey`. (Test code may parse keys; the backend is given refs.)
 */
export function storedKeyOf(backend: RedisBackend, key: string, entryKey?: string): string {
  const split = (k: string, kind: string): { prefix: string; id: string } | undefined => {
    const at = k.indexOf(`:${kind}:`);
    return at < 0 ? undefined : { prefix: k.slice(0, at), id: k.slice(at + kind.length + 2) };
  };
  const refOf = (k: string, kind: string): EntryRef => {
    const parts = split(k, kind);
    if (parts === undefined) throw new TypeError(`Not a ${kind} key: '${k}'`);
    return new Keyspace(parts.prefix).refOf(`${parts.prefix}:entry:${parts.id}`);
  };
  if (split(key, 'entry')) return backend.storedKeys(refOf(key, 'entry'))[0] as string;
  if (split(key, 'lock')) return backend.storedKeys(refOf(key, 'lock'))[1] as string;
  if (entryKey === undefined) throw new TypeError('the stored key of a tag on a cluster needs the entry key whose bucket is meant');
  return backend.storedKeys(refOf(entryKey, 'entry'), [key])[2] as string;
}
