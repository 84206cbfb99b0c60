/**
 * The syslog sink: RFC 5424 messages over TCP (RFC 6587 octet counting: `<length> <message>`), or
 * TLS (RFC 5425, same framing). A batch is one connection: every message is written, the sending
 * side closed, and the batch counts as taken once the receiver has read to the end and closed its
 * side too. Plain syslog has no acknowledgement; waiting for the receiver's close is the closest
 * thing, so a receiver that dies mid-batch makes Berth send the batch again rather than lose it.
 *
 * Message: `<PRI>1 TIMESTAMP HOST berth PID audit [berth@32473 id=… event=… …] BOM{json}`. The
 * SD-ID uses enterprise number 32473 (reserved by IANA for documentation, RFC 5612): Berth has no
 * enterprise number of its own. Severity is warning (4) for refusals and failures, notice (5)
 * otherwise; the facility is configured (default 13, log audit).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect as connectTcp, isIP, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { isFailureEvent, type AuditSink, type ExportedEntry } from './sink.js';
import { auditEntryView } from '../../api/audit.js';

export interface SyslogSinkSettings {
  name: string;
  host: string;
  port: number;
  tls: boolean;
  caFile?: string | undefined;
  serverName?: string | undefined;
  facility: number;
  timeoutMs: number;
}

const bom = '\ufeff';
const host = sanitize(hostname(), 255) || '-';

/** One audit entry as an RFC 5424 message (without framing). */
export function syslogMessage(entry: ExportedEntry, facility: number): string {
  const severity = isFailureEvent(entry.event) ? 4 : 5;
  const params: Array<[string, string | undefined]> = [
    ['id', String(entry.id)],
    ['event', entry.event],
    ['principal', entry.principalName],
    ['principalId', entry.principalId],
    ['repository', entry.repository],
    ['client', entry.clientAddress],
  ];
  const sd = params
    .filter((param): param is [string, string] => param[1] !== undefined)
    .map(([name, value]) => `${name}="${escapeParam(value)}"`)
    .join(' ');
  const body = JSON.stringify(auditEntryView(entry));
  return `<${facility * 8 + severity}>1 ${new Date(entry.at).toISOString()} ${host} berth ${process.pid} audit [berth@32473 ${sd}] ${bom}${body}`;
}

/** RFC 6587 octet-counting frame: the message's length in bytes, a space, the message. */
export function frame(message: string): Buffer {
  const bytes = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${bytes.length} `, 'ascii'), bytes]);
}

export class SyslogSink implements AuditSink {
  readonly name: string;
  private readonly ca: string | undefined;

  constructor(private readonly settings: SyslogSinkSettings) {
    this.name = settings.name;
    this.ca = settings.caFile ? readFileSync(settings.caFile, 'utf8') : undefined;
  }

  async send(entries: readonly ExportedEntry[], signal: AbortSignal): Promise<void> {
    const { settings } = this;
    const payload = Buffer.concat(entries.map((entry) => frame(syslogMessage(entry, settings.facility))));
    const socket: Socket = settings.tls
      ? connectTls({
          host: settings.host,
          port: settings.port,
          // SNI names a host, never an address (RFC 6066); an address is checked against the certificate's IP entries.
          ...(settings.serverName !== undefined || isIP(settings.host) === 0 ? { servername: settings.serverName ?? settings.host } : {}),
          ...(this.ca ? { ca: this.ca } : {}),
        })
      : connectTcp({ host: settings.host, port: settings.port });
    const connectEvent = settings.tls ? 'secureConnect' : 'connect';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no acknowledgement within ${settings.timeoutMs} ms`)), settings.timeoutMs);
      const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      const fail = (err: Error) => {
        cleanup();
        socket.destroy();
        reject(err);
      };
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('error', fail);
      socket.once(connectEvent, () => socket.end(payload));
      // Whatever the receiver says is ignored; it is read so its side can reach the end and close.
      socket.on('data', () => {});
      socket.once('end', () => {
        // The receiver read to the end of our stream and closed: it has every message. A receiver
        // that closes before our last byte left is not an acknowledgement.
        if (!socket.writableFinished) return fail(new Error('the receiver closed the connection before the batch was written'));
        cleanup();
        socket.destroy();
        resolve();
      });
    });
  }

  async close(): Promise<void> {}
}

/** PARAM-VALUE escaping (RFC 5424 6.3.3): `"`, `\` and `]` get a backslash. */
function escapeParam(value: string): string {
  return value.slice(0, 1024).replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** PRINTUSASCII without spaces, as HOSTNAME requires. */
function sanitize(value: string, max: number): string {
  return value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
}
