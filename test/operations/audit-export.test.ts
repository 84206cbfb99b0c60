/**
 * The audit export survives its receivers being down: a CloudEvents receiver (HTTP) and a syslog
 * receiver (RFC 5424 over TLS, octet counting) are down while audit entries are recorded, and
 * Berth is even restarted meanwhile; once they are back every entry arrives at both, identified by
 * its id (duplicates are allowed, at least once; each duplicate carries the same entry), and the
 * outbox empties.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo, Server as TcpServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import type { ConfigInput } from '../../src/config/schema.js';
import { basic } from '../auth/helpers.js';
import { Api } from '../admin/helpers.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { Receiver } from '../webhooks/helpers.js';
import { sample, scrape, waitFor } from './helpers.js';
import { loopbackCertificate } from '../support/tls.js';

/** A syslog receiver over TLS: reads octet-counted frames, records each message, closes when the sender does. */
class SyslogReceiver {
  readonly messages: string[] = [];
  private server: TcpServer | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly tls: { cert: string; key: string }) {}

  async listen(port = this.port): Promise<void> {
    const server = createTlsServer(this.tls, (socket) => {
      this.sockets.add(socket);
      let buffer = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          const space = buffer.indexOf(0x20);
          if (space < 0) break;
          const length = Number(buffer.subarray(0, space).toString('ascii'));
          if (buffer.length < space + 1 + length) break;
          this.messages.push(buffer.subarray(space + 1, space + 1 + length).toString('utf8'));
          buffer = buffer.subarray(space + 1 + length);
        }
      });
      socket.on('end', () => socket.end());
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Entry ids from the structured data (`[berth@32473 id="…" …]`). */
  ids(): number[] {
    return this.messages.map((message) => Number(/\[berth@32473 id="(\d+)"/.exec(message)?.[1]));
  }
}

describe('the audit export through a receiver outage', () => {
  let dir: string;
  let ca: string;
  let cloudEvents: Receiver;
  let syslog: SyslogReceiver;
  let server: TestServer;
  let config: ConfigInput;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-audit-export-'));
    const identity = await loopbackCertificate(dir, 'syslog');
    ca = identity.cert;
    const key = identity.key;
    cloudEvents = await Receiver.start();
    syslog = new SyslogReceiver({ cert: await readFile(ca, 'utf8'), key: await readFile(key, 'utf8') });
    await syslog.listen();
    // Both down before Berth records anything; their ports stay reserved by nobody but us (tests run one at a time).
    await cloudEvents.close();
    await syslog.close();
    config = {
      audit: {
        export: {
          sinks: [
            { name: 'siem', type: 'cloudevents', url: `${cloudEvents.url}/audit`, timeoutMs: 2000 },
            { name: 'syslog', type: 'syslog', address: `127.0.0.1:${syslog.port}`, tls: true, caFile: ca, timeoutMs: 2000 },
          ],
          batchSize: 7,
          pollIntervalMs: 100,
          backoff: { baseMs: 20, maxMs: 300 },
        },
      },
    };
    server = await startTestServer({ auth: true, dataDir: join(dir, 'data'), config });
  });
  after(async () => {
    await server?.stop();
    await cloudEvents?.close();
    await syslog?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('queues while the receivers are down, across a restart, and delivers every entry once they are back', async () => {
    const owner = await Api.asOwner(server.url);
    for (let i = 0; i < 6; i++) assert.equal((await owner.post('/principals', { kind: 'user', name: `audited-${i}`, grants: [] })).status, 201);
    // Fewer than the failed-login throttle allows per address.
    for (let i = 0; i < 4; i++) {
      const refused = await fetch(`${server.url}/oauth2/token?service=berth`, { headers: { Authorization: basic(`nobody-${i}`, 'wrong') } });
      assert.equal(refused.status, 401);
    }
    await waitFor('failed export attempts', async () => {
      const scraped = await scrape(server.url);
      return (
        sample(scraped, 'berth_audit_export_failures_total', { sink: 'siem' }) > 0 &&
        sample(scraped, 'berth_audit_export_failures_total', { sink: 'syslog' }) > 0
      );
    });
    // A restart while they are still down: the queue is in the database, not in the process.
    await server.app.close();
    server = await startTestServer({ auth: true, dataDir: join(dir, 'data'), config });
    const recorded = await waitFor('the audit log', async () => {
      const page = (await (await Api.asOwner(server.url)).get('/audit?limit=1000')).body as { entries: Array<{ id: number; event: string }> };
      return page.entries.length > 0 ? page.entries : undefined;
    });
    const ids = new Set(recorded.map((entry) => entry.id));
    assert.ok(ids.size >= 14, `principals created, logins refused, tokens issued: ${ids.size} entries`);
    assert.equal(cloudEvents.received.length, 0);
    assert.equal(syslog.messages.length, 0);

    await cloudEvents.listen();
    await syslog.listen();
    const delivered = () => new Set(cloudEvents.received.flatMap((r) => (Array.isArray(r.json) ? r.json : [])).map((e: { data: { id: number } }) => e.data.id));
    await waitFor('every entry at the CloudEvents receiver', () => [...ids].every((id) => delivered().has(id)));
    await waitFor('every entry at the syslog receiver', () => [...ids].every((id) => syslog.ids().includes(id)));

    // At least once: a duplicate is the same event, with the same id.
    const events = new Map<string, string>();
    for (const request of cloudEvents.received) {
      assert.equal(request.headers['content-type'], 'application/cloudevents-batch+json; charset=utf-8');
      for (const event of request.json as Array<{ id: string; data: { id: number } }>) {
        assert.equal(event.id, `audit-${event.data.id}`);
        const seen = events.get(event.id);
        if (seen !== undefined) assert.equal(JSON.stringify(event), seen, 'a duplicate carries the same entry');
        events.set(event.id, JSON.stringify(event));
      }
    }
    const refusal = [...events.values()].map((text) => JSON.parse(text)).find((event) => event.data.event === 'token.refused');
    assert.ok(refusal, 'refused token requests are exported');
    assert.equal(refusal.type, 'io.berth.audit.token.refused');
    assert.equal(refusal.specversion, '1.0');
    const message = syslog.messages.find((m) => m.includes('event="login.failed"'));
    assert.ok(message, 'failed logins reach syslog');
    assert.match(message, /^<108>1 \d{4}-\d\d-\d\dT[\d:.]+Z \S+ berth \d+ audit \[berth@32473 id="\d+" event="login\.failed"/, 'facility 13, severity warning');
    assert.ok(message.includes('\ufeff{'), 'the message is the entry as JSON, after a BOM');

    await waitFor('the outbox to empty', async () => {
      const scraped = await scrape(server.url);
      return sample(scraped, 'berth_audit_export_pending', { sink: 'siem' }) === 0 && sample(scraped, 'berth_audit_export_pending', { sink: 'syslog' }) === 0;
    });
  });
});
