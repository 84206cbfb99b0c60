/** The process logger: JSON lines on stdout. Secrets never reach it (requests log method, path, status). */
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({ level, base: { service: 'berth' } });
}
