/**
 * OpenTelemetry traces to a real OTLP/HTTP receiver on loopback (it decodes the JSON export the
 * exporter sends): the span tree of a push (a server span per request, with the storage and
 * database operations under it), the caller's `traceparent` followed, token issuance, a webhook
 * delivery and a sync copy as spans of their own, and `traceparent` carried into the webhook
 * request and into the requests the sync copy makes to its source.
 */
import assert from 'node:assert/strict';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Api } from '../admin/helpers.js';
import { tokenFor } from '../auth/helpers.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { Receiver } from '../webhooks/helpers.js';
import { pushSmallImage, waitFor } from './helpers.js';

interface Span {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number };
}

/** An OTLP/HTTP receiver: POST /v1/traces with the JSON encoding; every span it got, flattened. */
class OtlpReceiver {
  readonly spans: Span[] = [];
  readonly resources: Array<Record<string, unknown>> = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
          res.writeHead(415).end();
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: any[] };
        for (const resourceSpans of body.resourceSpans) {
          this.resources.push(attributes(resourceSpans.resource?.attributes));
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              this.spans.push({
                traceId: span.traceId,
                spanId: span.spanId,
                parentSpanId: span.parentSpanId ?? '',
                name: span.name,
                kind: span.kind,
                attributes: attributes(span.attributes),
                status: span.status ?? {},
              });
            }
          }
        }
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', () => resolve()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  children(parent: Span): Span[] {
    return this.spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
  }
}

function attributes(list: Array<{ key: string; value: Record<string, unknown> }> | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    const v = value['stringValue'] ?? value['intValue'] ?? value['boolValue'] ?? value['doubleValue'];
    out[key] = typeof v === 'string' && value['intValue'] !== undefined ? Number(v) : (v as string | number | boolean);
  }
  return out;
}

/** A pass-through proxy that records the headers of every request (what a sync source sees). */
async function recordingProxy(target: string): Promise<{ url: string; seen: IncomingHttpHeaders[]; stop(): Promise<void> }> {
  const seen: IncomingHttpHeaders[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    seen.push(req.headers);
    const forward = httpRequest(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', () => res.writeHead(502).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('traces', () => {
  const otlp = new OtlpReceiver();
  let hooks: Receiver;
  let source: TestServer;
  let proxy: Awaited<ReturnType<typeof recordingProxy>>;
  let server: TestServer;

  before(async () => {
    await otlp.start();
    hooks = await Receiver.start();
    source = await startTestServer();
    await pushSmallImage(source.url, undefined, 'upstream/tool', 'v1');
    proxy = await recordingProxy(source.url);
    server = await startTestServer({
      auth: true,
      config: {
        tracing: { endpoint: `${otlp.url}/v1/traces`, sampleRatio: 1, maxPerSecond: 0, serviceName: 'berth-under-test' },
        egress: { allow: ['127.0.0.1/32'] },
        webhooks: { pollIntervalMs: 200, backoff: { baseMs: 20, maxMs: 200 } },
        sync: { workerIntervalMs: 100, minPollIntervalMs: 50, leaseMs: 10_000 },
      },
    });
  });
  after(async () => {
    await server?.stop();
    await source?.stop();
    await proxy?.stop();
    await hooks?.close();
    await otlp.stop();
  });

  it('a push: one server span per request, storage and database operations under them, the caller’s trace followed', async () => {
    const token = String((await tokenFor(server.url, ownerName, ownerPassword, ['repository:traced/app:pull,push']))['token']);
    // The manifest PUT continues a trace the client started.
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const originalFetch = globalThis.fetch;
    globalThis.fetch = (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      const headers = new Headers(init?.headers);
      if (/\/manifests\//.test(url) && init?.method === 'PUT') headers.set('traceparent', `00-${callerTrace}-${callerSpan}-01`);
      return originalFetch(input, { ...init, headers });
    };
    try {
      await pushSmallImage(server.url, token, 'traced/app', 'v1');
    } finally {
      globalThis.fetch = originalFetch;
    }
    const put = await waitFor('the manifest PUT span', () => otlp.spans.find((s) => s.name === 'PUT manifest'));
    assert.equal(put.traceId, callerTrace, 'the caller’s trace');
    assert.equal(put.parentSpanId, callerSpan, 'under the caller’s span');
    assert.equal(put.kind, 2, 'SPAN_KIND_SERVER');
    assert.equal(put.attributes['http.route'], 'manifest');
    assert.equal(put.attributes['http.response.status_code'], 201);
    assert.equal(put.attributes['berth.repository'], 'traced/app');
    assert.match(String(put.attributes['berth.request_id']), /^[0-9a-f-]{36}$/);
    const underPut = await waitFor('the manifest write under it', () => {
      const names = otlp.children(put).map((s) => s.name);
      return names.includes('db manifests.put') ? names : undefined;
    });
    assert.ok(
      underPut.every((name) => name.startsWith('db ') || name.startsWith('storage.')),
      underPut.join(', '),
    );

    const upload = await waitFor('a blob upload span with its storage and database work', () =>
      otlp.spans.find((s) => s.name === 'PUT upload' && ['storage.move', 'db blobs.link'].every((name) => otlp.children(s).some((c) => c.name === name))),
    );
    assert.notEqual(upload.traceId, callerTrace, 'requests without a traceparent start their own trace');
    assert.equal(upload.parentSpanId, '');
    assert.equal(otlp.children(upload).find((c) => c.name === 'storage.move')?.attributes['berth.storage.driver'], server.app.storage.name);
    assert.ok(otlp.resources.some((r) => r['service.name'] === 'berth-under-test'));
  });

  it('token issuance is a span under its request', async () => {
    await tokenFor(server.url, ownerName, ownerPassword, ['repository:traced/app:pull']);
    const issued = await waitFor('a token span', () => otlp.spans.find((s) => s.name === 'token.token' && s.attributes['berth.token.grant'] === 'password'));
    const parent = otlp.spans.find((s) => s.spanId === issued.parentSpanId);
    assert.equal(parent?.name, 'GET token');
  });

  it('a webhook delivery is a span of its own, and the receiver gets its traceparent', async () => {
    const owner = await Api.asOwner(server.url);
    assert.equal((await owner.post('/webhooks', { name: 'traced', url: `${hooks.url}/hook` })).status, 201);
    const token = String((await tokenFor(server.url, ownerName, ownerPassword, ['repository:traced/hook:pull,push']))['token']);
    await pushSmallImage(server.url, token, 'traced/hook', 'v1');
    const received = await waitFor('the delivery', () => hooks.received.find((r) => r.path === '/hook'));
    const traceparent = String(received.headers['traceparent'] ?? '');
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent);
    assert.ok(match, `a sampled traceparent: ${traceparent}`);
    const delivery = await waitFor('the delivery span', () => otlp.spans.find((s) => s.name === 'webhook delivery' && s.traceId === match[1]));
    assert.equal(delivery.spanId, match[2], 'the receiver continues the delivery span');
    assert.equal(delivery.parentSpanId, '', 'a root span: background work starts its own trace');
  });

  it('a sync copy is a span of its own, and its requests to the source carry its traceparent', async () => {
    const owner = await Api.asOwner(server.url);
    const rule = await owner.post('/sync/rules', {
      name: 'mirror',
      source: { url: proxy.url },
      repositories: ['upstream/*'],
      triggers: { pollIntervalMs: 300 },
    });
    assert.equal(rule.status, 201, JSON.stringify(rule.body));
    const copy = await waitFor('the sync copy span', () => otlp.spans.find((s) => s.name === 'sync copy'));
    const fromCopy = proxy.seen.filter((h) => String(h['traceparent'] ?? '').includes(copy.traceId));
    assert.ok(fromCopy.length > 0, 'the source saw requests in the copy’s trace');
    assert.ok(
      fromCopy.some((h) => String(h['traceparent']).includes(`-${copy.spanId}-`)),
      'made inside the copy span',
    );
  });
});
