/**
 * go-hclog compatible JSON lines on stderr (protocol reference §1.7).
 *
 * Nomad's log relay casts @level/@message/@timestamp to strings without
 * checking, so those three are always strings here; @timestamp must carry
 * exactly six fractional digits or Nomad treats the line as raw text.
 */

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<Level, number> = { trace: 0, debug: 1, info: 2, warn: 3, error: 4 };

export type Fields = Record<string, unknown>;

export interface Sink {
  write(line: string): void;
}

/** `2026-03-01T10:20:30.123000Z`: JS gives milliseconds; pad to microseconds. */
export function hclogTimestamp(date: Date = new Date()): string {
  const iso = date.toISOString(); // always ...sss Z in UTC
  return `${iso.slice(0, 23)}000Z`;
}

/** Values that JSON cannot carry safely become strings (errors, bigints). */
function normalise(value: unknown): unknown {
  if (value instanceof Error) return value.message;
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return null;
  return value;
}

export class Logger {
  constructor(
    private readonly sink: Sink,
    private readonly module: string,
    private readonly minLevel: Level = 'trace',
    private readonly base: Fields = {},
  ) {}

  named(module: string): Logger {
    return new Logger(this.sink, `${this.module}.${module}`, this.minLevel, this.base);
  }

  with(fields: Fields): Logger {
    return new Logger(this.sink, this.module, this.minLevel, { ...this.base, ...fields });
  }

  log(level: Level, message: string, fields?: Fields): void {
    if (ORDER[level] < ORDER[this.minLevel]) return;
    const record: Record<string, unknown> = {
      '@level': level,
      '@message': String(message),
      '@module': this.module,
      '@timestamp': hclogTimestamp(),
    };
    for (const [k, v] of Object.entries(this.base)) if (!k.startsWith('@')) record[k] = normalise(v);
    if (fields) for (const [k, v] of Object.entries(fields)) if (!k.startsWith('@')) record[k] = normalise(v);
    let line: string;
    try {
      line = JSON.stringify(record);
    } catch {
      line = JSON.stringify({ '@level': level, '@message': String(message), '@module': this.module, '@timestamp': record['@timestamp'] });
    }
    this.sink.write(line + '\n');
  }

  trace(msg: string, fields?: Fields): void { this.log('trace', msg, fields); }
  debug(msg: string, fields?: Fields): void { this.log('debug', msg, fields); }
  info(msg: string, fields?: Fields): void { this.log('info', msg, fields); }
  warn(msg: string, fields?: Fields): void { this.log('warn', msg, fields); }
  error(msg: string, fields?: Fields): void { this.log('error', msg, fields); }
}

/**
 * stderr sink that never throws: after the Nomad agent dies the pipe is
 * broken (EPIPE) and the plugin must keep its tasks running regardless.
 */
export function stderrSink(): Sink {
  let broken = false;
  process.stderr.on('error', () => { broken = true; });
  return {
    write(line: string) {
      if (broken) return;
      try {
        process.stderr.write(line);
      } catch {
        broken = true;
      }
    },
  };
}

let root: Logger | undefined;

/** The process-wide logger, module `exec2` like the Go driver's. */
export function rootLogger(): Logger {
  if (!root) root = new Logger(stderrSink(), 'exec2');
  return root;
}

export function setRootLogger(logger: Logger): void {
  root = logger;
}
