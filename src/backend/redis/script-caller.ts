/**
 * Calling the backend's Lua scripts, one request per call from the very first one.
 *
 * The caller keeps, per connection (the one connection of a standalone or Sentinel client; per
 * master on a cluster), which scripts that connection is known to have sent:
 *
 * - the first call of a script on a connection goes out as EVAL with the body: one request,
 *   which also caches the script on the server; every later call as EVALSHA. Commands on one
 *   connection run in the order they were written, so the EVALSHAs written after that EVAL find
 *   the script even while the EVAL is still in flight: a burst of first calls costs one body.
 * - an EVALSHA answered NOSCRIPT (SCRIPT FLUSH, a restart or failover the client did not see as
 *   a reconnection) is sent again as EVAL: one more request, no separate SCRIPT LOAD round trip.
 *   Single-flight: if another call's EVAL of the script was written on that connection after
 *   this EVALSHA, the script is there by now and the call is retried as EVALSHA; only the
 *   first NOSCRIPT of a burst sends the body.
 * - a lost connection forgets what it knew (`close` of a standalone client; a master added,
 *   removed or the whole cluster reconnecting): the next call there sends EVAL again.
 *
 * What the caller knows is only ever a hint: a wrong guess costs one NOSCRIPT and one EVAL,
 * never a wrong answer. (Redis 7.4 and later may evict scripts cached by EVAL when more than
 * 500 of them were: that, too, is one NOSCRIPT and one EVAL.)
 *
 * @module
 */

import calculateSlot from 'cluster-key-slot';
import { Cluster, type Redis } from 'ioredis';
import type { RedisScript } from './scripts.js';

/** An argument of a script call: a key, or an ARGV value. */
export type ScriptArgument = string | number | Buffer;

/** What one connection is known to hold. */
interface ConnectionScripts {
  /** Script commands written on the connection so far: the last one's sequence number. */
  sent: number;
  /** By SHA1: the sequence number of the EVAL that caches the script there. Absent: unknown. */
  readonly loadedBy: Map<string, number>;
}

function freshConnection(): ConnectionScripts {
  return { sent: 0, loadedBy: new Map() };
}

/**
 * Sends the scripts of a backend through one ioredis client (a `Redis` or a `Cluster`): EVAL
 * the first time on each connection, EVALSHA after, NOSCRIPT handled once per script and
 * connection. See the module documentation.
 */
export class ScriptCaller {
  readonly #client: Redis | Cluster;
  /** A standalone client's connection. */
  #connection = freshConnection();
  /** A cluster's masters, by `host:port` (or by `slot N` while the slots are not known yet). */
  readonly #nodes = new Map<string, ConnectionScripts>();

  /** On a cluster: resolves once the client knows the slots (connecting it if need be). */
  readonly #clusterReady: () => Promise<void>;

  /**
   * @param client - the client the scripts are sent with
   * @param clusterReady - on a cluster: resolves once the client knows the slots, connecting it
   *   if need be, or rejects after a while
   */
  constructor(client: Redis | Cluster, clusterReady: () => Promise<void> = () => Promise.resolve()) {
    this.#client = client;
    this.#clusterReady = clusterReady;
    if (client instanceof Cluster) {
      client.on('+node', this.#forgetNode);
      client.on('-node', this.#forgetNode);
      client.on('close', this.#forgetConnections);
    } else {
      client.on('close', this.#forgetConnections);
    }
  }

  /**
   * Runs `script` with these KEYS and ARGV and resolves with its reply (bulk strings as
   * Buffers). The key count is the keys array's length, checked against the script's own
   * (`numberOfKeys`, from its file name) when it has one.
   */
  call(script: RedisScript, keys: readonly string[], argv: readonly ScriptArgument[]): Promise<unknown> {
    const keyCount = keys.length;
    if (script.numberOfKeys !== undefined && keyCount !== script.numberOfKeys) {
      return Promise.reject(new TypeError(`${script.file} takes ${script.numberOfKeys} keys, got ${keyCount}`));
    }
    const args: ScriptArgument[] = new Array<ScriptArgument>(2 + keyCount + argv.length);
    args[0] = script.sha;
    args[1] = keyCount;
    for (let i = 0; i < keyCount; i++) args[2 + i] = keys[i] as string;
    for (let i = 0; i < argv.length; i++) args[2 + keyCount + i] = argv[i] as ScriptArgument;
    const connection = this.#connectionOf(keys[0]);
    if (connection === undefined) {
      // A cluster that does not know its slots yet: the call would wait in its queue anyway;
      // waiting here instead lets it go out knowing its master.
      return this.#clusterReady().then(() => this.#send(script, this.#connectionOf(keys[0]) ?? this.#unknownSlot(keys[0]), args));
    }
    return this.#send(script, connection, args);
  }

  /** Writes a call as EVAL if its script is not known on the connection, else as EVALSHA. */
  #send(script: RedisScript, connection: ConnectionScripts, args: ScriptArgument[]): Promise<unknown> {
    const sequence = ++connection.sent;
    if (!connection.loadedBy.has(script.sha)) {
      connection.loadedBy.set(script.sha, sequence);
      args[0] = script.source;
      return send(this.#client, 'evalBuffer', args);
    }
    return send(this.#client, 'evalshaBuffer', args).catch((error: unknown) => {
      if (!isNoScript(error)) throw error;
      return this.#afterNoScript(script, connection, sequence, args, false);
    });
  }

  /** Stops following the client's connection events. */
  close(): void {
    const client = this.#client;
    client.off('+node', this.#forgetNode);
    client.off('-node', this.#forgetNode);
    client.off('close', this.#forgetConnections);
  }

  /**
   * An EVALSHA written as number `sequence` on `connection` was answered NOSCRIPT: retried as
   * EVALSHA if an EVAL of the script was written there after it (it runs first), else sent as
   * EVAL, which caches the script again for the calls after it.
   */
  #afterNoScript(
    script: RedisScript,
    connection: ConnectionScripts,
    sequence: number,
    args: ScriptArgument[],
    retried: boolean,
  ): Promise<unknown> {
    const current = this.#connectionOf(args[2]) ?? this.#unknownSlot(args[2]);
    const loadedBy = current.loadedBy.get(script.sha);
    const resent = ++current.sent;
    if (!retried && current === connection && loadedBy !== undefined && loadedBy > sequence) {
      return send(this.#client, 'evalshaBuffer', args).catch((error: unknown) => {
        if (!isNoScript(error)) throw error;
        return this.#afterNoScript(script, current, resent, args, true);
      });
    }
    current.loadedBy.set(script.sha, resent);
    const withBody = args.slice();
    withBody[0] = script.source;
    return send(this.#client, 'evalBuffer', withBody);
  }

  /**
   * The connection a script call with this first key goes to; `undefined` on a cluster that
   * does not know which master serves the key's slot.
   */
  #connectionOf(firstKey: ScriptArgument | undefined): ConnectionScripts | undefined {
    const client = this.#client;
    if (!(client instanceof Cluster)) return this.#connection;
    const node = client.slots[slotOfKey(firstKey)]?.[0];
    return node === undefined ? undefined : this.#node(node);
  }

  /**
   * A slot no master serves, as far as the cluster client knows: its calls are queued and go,
   * in order, to whichever master serves it once known, so they share one entry meanwhile.
   */
  #unknownSlot(firstKey: ScriptArgument | undefined): ConnectionScripts {
    return this.#node(`slot ${slotOfKey(firstKey)}`);
  }

  #node(name: string): ConnectionScripts {
    let connection = this.#nodes.get(name);
    if (connection === undefined) this.#nodes.set(name, (connection = freshConnection()));
    return connection;
  }

  readonly #forgetNode = (node: Redis): void => {
    this.#nodes.delete(`${node.options.host ?? ''}:${node.options.port ?? ''}`);
  };

  readonly #forgetConnections = (): void => {
    this.#connection = freshConnection();
    this.#nodes.clear();
  };
}

function slotOfKey(key: ScriptArgument | undefined): number {
  return typeof key === 'string' ? calculateSlot(key) : 0;
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * EVAL or EVALSHA with Buffer replies. ioredis has `evalBuffer` and `evalshaBuffer` at run time
 * but not in its types; `callBuffer('EVALSHA', …)` would do the same, except under
 * `enableAutoPipelining`, where ioredis 6 drops the command name of `call`/`callBuffer` (the
 * server then sees the SHA1 as the command).
 */
function send(client: Redis | Cluster, command: 'evalBuffer' | 'evalshaBuffer', args: ScriptArgument[]): Promise<unknown> {
  return (client as unknown as Record<typeof command, (...a: ScriptArgument[]) => Promise<unknown>>)[command](...args);
}
