/**
 * The process logger: JSON lines on stdout, or one readable line per entry when stdout is a
 * terminal (`logFormat: auto`, the default). Secrets never reach it (requests log method, route,
 * status and a request id, never headers or bodies).
 *
 * The readable form is written here rather than with pino-pretty: that package (and its
 * dependencies) would be loaded at every start for what is a few lines of formatting.
 *
 * The level can change while the process runs (`setLogLevel`, the management API's
 * `PUT /api/v1/settings/log-level`). pino gives each child logger its own copy of the level when it
 * is created, so the long-lived children are tracked (weakly) and changed along with the root.
 */
import { pino, type Logger } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

export const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

const children = new WeakMap<Logger, Set<WeakRef<Logger>>>();
/** Tracked children past which dead references are swept. */
const sweepAt = 256;

export function createLogger(level: string, format: LogFormat = 'json', stream: { write(line: string): void; isTTY?: boolean } = process.stdout): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && stream.isTTY === true);
  const tracked = new Set<WeakRef<Logger>>();
  const options = {
    level,
    base: { service: 'berth' },
    onChild(child: Logger) {
      tracked.add(new WeakRef(child));
      if (tracked.size > sweepAt) for (const ref of tracked) if (ref.deref() === undefined) tracked.delete(ref);
    },
  };
  const logger = pretty
    ? pino(options, { write: (line: string) => void stream.write(prettyLine(line, stream.isTTY === true)) })
    : stream === process.stdout
      ? pino(options) // pino's own fast stdout writer
      : pino(options, { write: (line: string) => void stream.write(line) });
  children.set(logger, tracked);
  return logger;
}

/** Changes the level of `logger` and of every child of it still alive (when it was made by `createLogger`). */
export function setLogLevel(logger: Logger, level: LogLevel): void {
  logger.level = level;
  for (const ref of children.get(logger) ?? []) {
    const child = ref.deref();
    if (child) child.level = level;
  }
}

const levelNames: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const levelColours: Record<number, string> = { 10: '90', 20: '36', 30: '32', 40: '33', 50: '31', 60: '35' };
const omitted = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service']);

/**
 * One JSON log line as `12:34:56.789 INFO  message key=value …` (colours on a terminal). A line
 * that is not JSON passes through unchanged. Errors show their message and the stack's first frames.
 */
export function prettyLine(line: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = typeof entry['level'] === 'number' ? entry['level'] : 30;
  const time = typeof entry['time'] === 'number' ? new Date(entry['time']).toISOString().slice(11, 23) : '';
  const name = (levelNames[level] ?? String(level)).padEnd(5);
  const shown = colour ? `\u001b[${levelColours[level] ?? '0'}m${name}\u001b[0m` : name;
  const fields: string[] = [];
  let stack = '';
  for (const [key, value] of Object.entries(entry)) {
    if (omitted.has(key)) continue;
    if ((key === 'err' || key === 'error') && value !== null && typeof value === 'object') {
      const err = value as { message?: unknown; stack?: unknown };
      fields.push(`${key}=${JSON.stringify(String(err.message ?? ''))}`);
      if (typeof err.stack === 'string')
        stack = err.stack
          .split('\n')
          .slice(1, 6)
          .map((frame) => `\n    ${frame.trim()}`)
          .join('');
      continue;
    }
    fields.push(`${key}=${typeof value === 'string' && /^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value)}`);
  }
  const msg = typeof entry['msg'] === 'string' ? entry['msg'] : '';
  return `${time} ${shown} ${msg}${fields.length > 0 ? ` ${fields.join(' ')}` : ''}${stack}\n`;
}
