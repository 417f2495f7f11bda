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
 * - a user whose ACL refuses EVAL but allows SCRIPT LOAD and EVALSHA (the ACL hermes asked for
 *   before it sent EVAL) gets the scripts loaded with SCRIPT LOAD instead: once per script and
 *   connection, single-flight, then EVALSHA — one more round trip for the first call only.
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
import { Cluster, Command, type Redis } from 'ioredis';
import type { RedisScript } from './scripts.js';

/** An argument of a script call: a key, or an ARGV value. */
export type ScriptArgument = string | number | Buffer;

/** What one connection is known to hold. */
interface ConnectionScripts {
  /** Script commands written on the connection so far: the last one's sequence number. */
  sent: number;
  /** By SHA1: the sequence number of the EVAL that caches the script there. Absent: unknown. */
  readonly loadedBy: Map<string, number>;
  /** By SHA1: a SCRIPT LOAD under way (only when EVAL is refused, see {@link ScriptCaller}). */
  readonly loading: Map<string, Promise<unknown>>;
}

function freshConnection(): ConnectionScripts {
  return { sent: 0, loadedBy: new Map(), loading: new Map() };
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
  /** Whether the server refused EVAL to this client's user: scripts are then loaded with SCRIPT LOAD. */
  #evalRefused = false;

  /** Turns a failure into the error the call rejects with (naming the server, say). */
  readonly #explain: (error: unknown) => unknown;

  /**
   * @param client - the client the scripts are sent with
   * @param clusterReady - on a cluster: resolves once the client knows the slots, connecting it
   *   if need be, or rejects after a while
   * @param explain - turns a failure (other than NOSCRIPT) into the error the call rejects with
   */
  constructor(
    client: Redis | Cluster,
    clusterReady: () => Promise<void> = () => Promise.resolve(),
    explain: (error: unknown) => unknown = (error) => error,
  ) {
    this.#client = client;
    this.#clusterReady = clusterReady;
    this.#explain = explain;
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
   * Buffers), passed through `onReply` when given; a failure other than NOSCRIPT goes through
   * `onError` when given. (Taking both here keeps a call to one promise reaction on the hot
   * path.) The key count is the keys array's length, checked against the script's own
   * (`numberOfKeys`, from its file name) when it has one.
   */
  call<T = unknown>(
    script: RedisScript,
    keys: readonly string[],
    argv: readonly ScriptArgument[],
    onReply?: (reply: unknown) => T,
    onError?: (error: unknown) => never,
  ): Promise<T> {
    const keyCount = keys.length;
    if (script.numberOfKeys !== undefined && keyCount !== script.numberOfKeys) {
      return Promise.reject(new TypeError(`${script.file} takes ${script.numberOfKeys} keys, got ${keyCount}`));
    }
    const args: ScriptArgument[] = new Array<ScriptArgument>(2 + keyCount + argv.length);
    args[0] = script.sha;
    args[1] = keyCount;
    for (let i = 0; i < keyCount; i++) args[2 + i] = keys[i] as string;
    for (let i = 0; i < argv.length; i++) args[2 + keyCount + i] = argv[i] as ScriptArgument;
    const call: PendingCall<T> = { script, args, onReply, onError };
    const connection = this.#connectionOf(keys[0]);
    if (connection === undefined) {
      // A cluster that does not know its slots yet: the call would wait in its queue anyway;
      // waiting here instead lets it go out knowing its master.
      return this.#clusterReady().then(() => this.#send(call, this.#connectionOf(keys[0]) ?? this.#unknownSlot(keys[0])), onError);
    }
    return this.#send(call, connection);
  }

  /** Writes a call as EVAL if its script is not known on the connection, else as EVALSHA. */
  #send<T>(call: PendingCall<T>, connection: ConnectionScripts): Promise<T> {
    const { script, args } = call;
    const sequence = ++connection.sent;
    if (!connection.loadedBy.has(script.sha)) {
      connection.loadedBy.set(script.sha, sequence);
      return this.#sendBody(call, connection);
    }
    return send(this.#client, 'evalsha', args).then<T, T>(call.onReply, (error: unknown) => {
      if (!isNoScript(error)) return fail(this.#explain(error), call);
      return this.#afterNoScript(call, connection, sequence, false);
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
  #afterNoScript<T>(call: PendingCall<T>, connection: ConnectionScripts, sequence: number, retried: boolean): Promise<T> {
    const { script, args } = call;
    const current = this.#connectionOf(args[2]) ?? this.#unknownSlot(args[2]);
    const loadedBy = current.loadedBy.get(script.sha);
    const resent = ++current.sent;
    if (!retried && current === connection && loadedBy !== undefined && loadedBy > sequence) {
      return send(this.#client, 'evalsha', args).then<T, T>(call.onReply, (error: unknown) => {
        if (!isNoScript(error)) return fail(this.#explain(error), call);
        return this.#afterNoScript(call, current, resent, true);
      });
    }
    current.loadedBy.set(script.sha, resent);
    return this.#sendBody(call, current);
  }

  /**
   * Sends the call with the script's body (EVAL), which also caches the script on the
   * connection; if the server refuses EVAL to this user, loads the script with SCRIPT LOAD
   * (single-flight per script and connection) and sends EVALSHA, now and for every later first use.
   */
  #sendBody<T>(call: PendingCall<T>, connection: ConnectionScripts): Promise<T> {
    if (this.#evalRefused) return this.#loadThenCall(call, connection);
    return send(this.#client, 'eval', withBody(call)).then<T, T>(call.onReply, (error: unknown) => {
      if (!isEvalRefused(error)) return fail(this.#explain(error), call);
      this.#evalRefused = true;
      return this.#loadThenCall(call, connection);
    });
  }

  /** SCRIPT LOAD of the call's script (once per script and connection), then its EVALSHA. */
  #loadThenCall<T>(call: PendingCall<T>, connection: ConnectionScripts): Promise<T> {
    const { script, args } = call;
    let loading = connection.loading.get(script.sha);
    if (loading === undefined) {
      const client = this.#client;
      // On a cluster, on every master: which one serves the slot may change meanwhile.
      const load = client instanceof Cluster ? Promise.all(client.nodes('master').map((node) => node.script('LOAD', script.source))) : client.script('LOAD', script.source);
      loading = load.finally(() => connection.loading.delete(script.sha));
      connection.loading.set(script.sha, loading);
    }
    return loading
      .then(() => send(this.#client, 'evalsha', args))
      .then<T, T>(call.onReply, (error: unknown) => fail(this.#explain(error), call));
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

/** A call on its way: what to send, and what to do with the reply. */
interface PendingCall<T> {
  readonly script: RedisScript;
  /** The EVALSHA arguments: SHA1, key count, keys, ARGV. */
  readonly args: ScriptArgument[];
  readonly onReply: ((reply: unknown) => T) | undefined;
  readonly onError: ((error: unknown) => never) | undefined;
}

/** The call's EVAL arguments: the EVALSHA ones with the body in place of the SHA1. */
function withBody(call: PendingCall<unknown>): ScriptArgument[] {
  const args = call.args.slice();
  args[0] = call.script.source;
  return args;
}

/** A failure other than NOSCRIPT: through the call's `onError`, else rethrown. */
function fail(error: unknown, call: PendingCall<unknown>): never {
  if (call.onError !== undefined) call.onError(error);
  throw error;
}

function slotOfKey(key: ScriptArgument | undefined): number {
  return typeof key === 'string' ? calculateSlot(key) : 0;
}

/** NOPERM for EVAL: the user's ACL lacks `+eval`. */
function isEvalRefused(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOPERM') && /'eval'/i.test(error.message);
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT');
}

/**
 * EVAL or EVALSHA with Buffer replies. The command is built with no arguments and given them
 * after: ioredis' constructor flattens its arguments with `Array.prototype.flat`, which costs
 * 180–240 ns per argument on Node 20 (`npm run bench -- tick`) — about 2 µs per read, and
 * tens of microseconds for a batch of them (see `batch.ts`) — while the arguments here are flat
 * already. `stringifyArguments` then does what the constructor would: numbers to strings, and
 * the Buffer mode when an argument is a Buffer. Sent with `sendCommand`, which a Redis and a
 * Cluster client both have (no auto-pipelining: under it ioredis 6 drops the command name of
 * `call`/`callBuffer`, and a script call is one command anyway).
 */
function send(client: Redis | Cluster, command: 'eval' | 'evalsha', args: ScriptArgument[]): Promise<unknown> {
  const built = new Command(command, [], { replyEncoding: null });
  built.args = args;
  built.stringifyArguments();
  client.sendCommand(built);
  return built.promise as Promise<unknown>;
}
