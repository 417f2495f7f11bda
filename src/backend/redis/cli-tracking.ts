/**
 * The client-side-caching part of `hermes inspect`: what a server reports about `CLIENT
 * TRACKING` (the INFO counters, `tracking-table-max-keys`) and which of its clients track keys,
 * where their invalidations go, and whether that connection still exists.
 *
 * What the server says, verified against redis-server 7.0 (see docs/redis.md):
 * - INFO `clients` has `tracking_clients`; INFO `stats` has `tracking_total_keys`,
 *   `tracking_total_items` and `tracking_total_prefixes` (servers before 6.0 have none).
 * - CLIENT LIST gives every client `flags` and `redir`: flag `t` is tracking on, `B` broadcast
 *   mode, `R` the server already found the redirect target gone (set when it had an
 *   invalidation to deliver). `redir` is the id invalidations go to, `0` for a tracking client
 *   that does not redirect (RESP3 pushes on its own connection), `-1` when tracking is off;
 *   `resp` (7.0) is the client's protocol: a RESP2 client without a redirect gets nothing.
 *   Client ids are never reused, so a `redir` that no listed client has is gone for good.
 *
 * @module
 */

import type { Redis as RedisClient } from 'ioredis';

/** How many tracking clients a node's report lists at most (broken redirects first). */
export const TRACKING_CLIENTS_SHOWN = 50;

/** The INFO fields reported, in this order; a field the server does not send is left out. */
const INFO_FIELDS = ['tracking_clients', 'tracking_total_keys', 'tracking_total_items', 'tracking_total_prefixes'] as const;

/** One client with tracking on, from CLIENT LIST. */
export interface TrackingClient {
  /** Its client id. */
  readonly id: number;
  /** Its address (`ip:port`, or the socket path). */
  readonly addr: string;
  /** Its name (CLIENT SETNAME), `''` if it has none. */
  readonly name: string;
  /** The id its invalidations are redirected to; `0`: no redirect (its own connection, RESP3). */
  readonly redir: number;
  /** Whether the client `redir` names is connected; `null` when it does not redirect. */
  readonly redirectConnected: boolean | null;
  /**
   * The redirect target is gone (not in CLIENT LIST, or flag `R`): the server has nowhere to
   * send this client's invalidations, so whatever it caches is never invalidated.
   */
  readonly redirectBroken: boolean;
  /**
   * Its protocol (CLIENT LIST `resp`, servers from 7.0; `null` before). A RESP2 client without a
   * redirect cannot be sent invalidations at all.
   */
  readonly resp: number | null;
  /** Broadcasting mode (`CLIENT TRACKING ON BCAST`, flag `B`). */
  readonly bcast: boolean;
  /** Its CLIENT LIST flags, as the server sent them. */
  readonly flags: string;
}

/** The tracking clients of one node, or why they could not be listed. */
export type TrackingClients =
  | {
      /** CLIENT LIST answered. */
      readonly listed: true;
      /** How many clients have tracking on. */
      readonly total: number;
      /** How many of them have a broken redirect (all counted, shown or not). */
      readonly brokenRedirects: number;
      /** The first {@link TRACKING_CLIENTS_SHOWN} of them: broken redirects first, then by id. */
      readonly shown: readonly TrackingClient[];
      /** How many more were not shown. */
      readonly more: number;
    }
  | {
      /** CLIENT LIST was refused (typically by the ACL: `+client|list` is missing). */
      readonly listed: false;
      /** The server's error message. */
      readonly error: string;
    };

/** The client-side-caching state of one server, as `inspect` reports it. */
export interface NodeTracking {
  /** `host:port` (or the socket path) of the server. */
  readonly node: string;
  /** The tracking counters of INFO that the server sends; empty if INFO was refused. */
  readonly info: Partial<Record<(typeof INFO_FIELDS)[number], number>>;
  /** INFO's error message when it was refused; absent otherwise. */
  readonly infoError?: string;
  /**
   * `tracking-table-max-keys` (CONFIG GET; `0` means no limit), or `'unknown'` when CONFIG is
   * refused (ACL, a managed service that renames it) or the server does not know the setting.
   */
  readonly trackingTableMaxKeys: number | 'unknown';
  /** The clients with tracking on. */
  readonly clients: TrackingClients;
}

/** A server's refusal (an error reply: NOPERM, unknown command…), as opposed to a lost connection. */
function isReplyError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'ReplyError';
}

/** Runs `read`; a reply error becomes `{ error }`, anything else (a lost connection) is thrown. */
async function orRefusal<T>(read: () => Promise<T>): Promise<{ value: T } | { error: string }> {
  try {
    return { value: await read() };
  } catch (error) {
    if (isReplyError(error)) return { error: error.message };
    throw error;
  }
}

/** The `name:value` lines of an INFO reply, as a map. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0 && !line.startsWith('#')) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/**
 * The clients of a CLIENT LIST reply, one `field=value` map each. No value holds a space
 * (CLIENT SETNAME and ACL user names refuse them), so splitting on spaces is exact; a value
 * runs to the next space even if it holds `=`.
 */
function parseClientList(text: string): Array<Map<string, string>> {
  const clients: Array<Map<string, string>> = [];
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() === '') continue;
    const fields = new Map<string, string>();
    for (const pair of line.trim().split(' ')) {
      const equals = pair.indexOf('=');
      if (equals > 0) fields.set(pair.slice(0, equals), pair.slice(equals + 1));
    }
    clients.push(fields);
  }
  return clients;
}

/** The tracking clients of a CLIENT LIST reply, with the state of their redirects. */
function trackingClients(list: string, limit: number): TrackingClients {
  const clients = parseClientList(list);
  const connected = new Set(clients.map((c) => c.get('id')));
  const tracking: TrackingClient[] = [];
  for (const c of clients) {
    const flags = c.get('flags') ?? '';
    if (!flags.includes('t')) continue;
    const redir = Number(c.get('redir') ?? '0');
    const redirects = Number.isFinite(redir) && redir > 0;
    const redirectConnected = redirects ? connected.has(String(redir)) : null;
    const resp = Number(c.get('resp'));
    tracking.push({
      id: Number(c.get('id')),
      addr: c.get('addr') ?? '',
      name: c.get('name') ?? '',
      redir: redirects ? redir : 0,
      redirectConnected,
      redirectBroken: redirects && (redirectConnected === false || flags.includes('R')),
      resp: Number.isInteger(resp) && resp > 0 ? resp : null,
      bcast: flags.includes('B'),
      flags,
    });
  }
  tracking.sort((a, b) => Number(b.redirectBroken) - Number(a.redirectBroken) || a.id - b.id);
  return {
    listed: true,
    total: tracking.length,
    brokenRedirects: tracking.filter((c) => c.redirectBroken).length,
    shown: tracking.slice(0, limit),
    more: Math.max(0, tracking.length - limit),
  };
}

/** `host:port` of a node, or its socket path. */
function nodeName(client: RedisClient): string {
  const { path, host, port } = client.options;
  return path !== undefined && path !== '' ? path : `${host ?? 'localhost'}:${port ?? 6379}`;
}

/**
 * Reads one server's client-side-caching state: INFO `clients` and `stats` (two calls, so that
 * servers before 7.0, which take one section per INFO, answer too), CONFIG GET
 * `tracking-table-max-keys` and CLIENT LIST. A refused command is reported, never thrown; a lost
 * connection is thrown.
 *
 * @param limit - how many tracking clients to list at most (default {@link TRACKING_CLIENTS_SHOWN})
 */
export async function readTracking(client: RedisClient, limit = TRACKING_CLIENTS_SHOWN): Promise<NodeTracking> {
  const info: Partial<Record<(typeof INFO_FIELDS)[number], number>> = {};
  let infoError: string | undefined;
  for (const section of ['clients', 'stats']) {
    const reply = await orRefusal(() => client.info(section));
    if ('error' in reply) {
      infoError = reply.error;
      continue;
    }
    const fields = parseInfo(reply.value);
    for (const name of INFO_FIELDS) {
      const value = fields.get(name);
      if (value !== undefined && value !== '' && Number.isFinite(Number(value))) info[name] = Number(value);
    }
  }

  const config = await orRefusal(() => client.config('GET', 'tracking-table-max-keys') as Promise<unknown>);
  let trackingTableMaxKeys: number | 'unknown' = 'unknown';
  if ('value' in config && Array.isArray(config.value) && config.value.length >= 2) {
    const max = Number(config.value[1]);
    if (Number.isFinite(max)) trackingTableMaxKeys = max;
  }

  const list = await orRefusal(() => client.client('LIST'));
  const clients: TrackingClients = 'error' in list ? { listed: false, error: list.error } : trackingClients(String(list.value), limit);

  return { node: nodeName(client), info, ...(infoError === undefined ? {} : { infoError }), trackingTableMaxKeys, clients };
}

/** A tracking client's redirect, in words. */
function describeRedirect(c: TrackingClient): string {
  if (c.redirectConnected === null) {
    return c.resp === 2 ? 'no redirect, RESP2 (its invalidations cannot be delivered)' : 'no redirect (RESP3 pushes on its own connection)';
  }
  if (c.redirectBroken) return `redirect -> ${c.redir}  REDIRECT BROKEN (client ${c.redir} is gone: its invalidations are lost)`;
  return `redirect -> ${c.redir} (connected)`;
}

/** The text lines of one node's report, for `inspect` without `--json`. */
export function formatTracking(report: NodeTracking): string[] {
  const lines = [`client-side caching (CLIENT TRACKING) on ${report.node}`];
  const label = (name: string): string => `  ${name.padEnd(26)}`;
  for (const [name, value] of Object.entries(report.info)) lines.push(`${label(name)}${value}`);
  if (report.infoError !== undefined) lines.push(`  INFO refused: ${report.infoError}`);
  const max = report.trackingTableMaxKeys;
  const keys = report.info.tracking_total_keys;
  let fill = '';
  if (typeof max === 'number' && max > 0 && keys !== undefined) fill = `  (${((100 * keys) / max).toFixed(1)}% used)`;
  if (max === 0) fill = '  (no limit)';
  lines.push(`${label('tracking-table-max-keys')}${max}${fill}`);

  const { clients } = report;
  if (!clients.listed) {
    lines.push(`  CLIENT LIST refused (${clients.error}): the tracking clients cannot be listed`);
    return lines;
  }
  if (clients.total === 0) {
    lines.push('  clients with tracking on: none');
    return lines;
  }
  const broken = clients.brokenRedirects === 0 ? '' : `, ${clients.brokenRedirects} with a redirect broken`;
  lines.push(`  clients with tracking on: ${clients.total}${broken}`);
  for (const c of clients.shown) {
    const mode = c.bcast ? '  bcast' : '';
    lines.push(`    id ${c.id}  addr ${c.addr}  name ${c.name === '' ? '-' : c.name}${mode}  ${describeRedirect(c)}`);
  }
  if (clients.more > 0) lines.push(`    … and ${clients.more} more`);
  return lines;
}
