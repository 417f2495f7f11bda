/**
 * Records the requests clients send to a Redis server, with MONITOR on a connection of its
 * own: what the round-trip tests count and the NOSCRIPT test inspects.
 */

import { Redis } from 'ioredis';
import { listRedisScripts } from '../../src/backend/redis/index.js';

/** One command as MONITOR reports it. */
export interface LoggedCommand {
  /** The command name, lowercase (`evalsha`, `script`, …). */
  readonly name: string;
  /** Its arguments after the name, as strings. */
  readonly args: readonly string[];
  /** `ip:port` of the client that sent it, or `lua` for a command run inside a script. */
  readonly source: string;
}

/** A MONITOR connection that records the commands sent while an action runs. */
export class CommandLog {
  readonly #control: Redis;
  readonly #monitor: Redis;
  readonly #seen: LoggedCommand[] = [];
  #marker = 0;

  private constructor(control: Redis, monitor: Redis) {
    this.#control = control;
    this.#monitor = monitor;
    monitor.on('monitor', (_time: string, args: string[], source: string) => {
      const [name = '', ...rest] = args;
      this.#seen.push({ name: name.toLowerCase(), args: rest, source });
    });
  }

  /** Opens the MONITOR connection (and a control connection for markers). */
  static async open(options: { host: string; port: number }): Promise<CommandLog> {
    const control = new Redis({ host: options.host, port: options.port, lazyConnect: true });
    await control.connect();
    const monitor = await control.duplicate().monitor();
    return new CommandLog(control, monitor);
  }

  /**
   * Runs `action` and returns the commands clients sent meanwhile (not those run inside
   * scripts, unless `withLua`), in the order the server executed them. Markers sent before
   * and after the action delimit it exactly: MONITOR reports in execution order.
   */
  async record(action: () => Promise<unknown>, options: { withLua?: boolean } = {}): Promise<LoggedCommand[]> {
    const start = await this.#mark();
    await action();
    const end = await this.#mark();
    const from = this.#seen.findIndex((c) => isMarker(c, start));
    const to = this.#seen.findIndex((c) => isMarker(c, end));
    const during = this.#seen.slice(from + 1, to);
    this.#seen.splice(0, to + 1);
    return options.withLua ? during : during.filter((c) => c.source !== 'lua');
  }

  /** Closes both connections. */
  async close(): Promise<void> {
    this.#monitor.disconnect();
    await this.#control.quit();
  }

  async #mark(): Promise<string> {
    const marker = `command-log-marker-${++this.#marker}`;
    await this.#control.echo(marker);
    // MONITOR output is pushed asynchronously: wait until the marker shows up.
    const deadline = Date.now() + 5000;
    while (!this.#seen.some((c) => isMarker(c, marker))) {
      if (Date.now() > deadline) throw new Error(`MONITOR did not report ${marker} within 5 s`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    return marker;
  }
}

function isMarker(command: LoggedCommand, marker: string): boolean {
  return command.name === 'echo' && command.args[0] === marker;
}

/**
 * The script a command ran, by name: EVALSHA by its SHA1, EVAL by its body (as MONITOR escapes
 * it); `undefined` for any other command.
 */
export function scriptOf(command: LoggedCommand): string | undefined {
  const first = command.args[0] ?? '';
  if (command.name === 'evalsha') return listRedisScripts().find((s) => s.sha === first)?.name;
  if (command.name === 'eval') {
    const source = unescapeMonitor(first);
    return listRedisScripts().find((s) => s.source === source)?.name ?? 'unknown script';
  }
  return undefined;
}

/**
 * A MONITOR argument as it was sent, read as UTF-8: MONITOR escapes quotes, control and
 * non-ASCII bytes (a script's `×` is two escaped bytes).
 */
export function unescapeMonitor(text: string): string {
  const simple: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };
  const bytes = text.replace(/\\(x[0-9a-f]{2}|[nrtab"\\])/g, (_, code: string) =>
    code.startsWith('x') ? String.fromCharCode(parseInt(code.slice(1), 16)) : (simple[code] as string),
  );
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** The script commands among `commands` (EVAL, EVALSHA, SCRIPT …), as `name script` strings. */
export function scriptCommands(commands: readonly LoggedCommand[]): string[] {
  return commands
    .filter((c) => c.name === 'eval' || c.name === 'evalsha' || c.name === 'script')
    .map((c) => (c.name === 'script' ? `script ${(c.args[0] ?? '').toLowerCase()}` : `${c.name} ${scriptOf(c) ?? '?'}`));
}
