/** node-transport.ts against real HTTP servers on loopback: what it answers must be what undici's `request` answers. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { request as undiciRequest } from 'undici';
import { nodeRequest, type TransportOptions } from './node-transport.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

async function serve(handler: Handler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => handler(req, res, body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const defaults: TransportOptions = { method: 'GET', headers: {}, maxRedirections: 0, headersTimeout: 10_000, bodyTimeout: 10_000 };

async function text(body: AsyncIterable<Buffer>): Promise<string> {
  let out = '';
  for await (const chunk of body) out += chunk.toString();
  return out;
}

describe('node transport', () => {
  const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
  let main: { server: Server; url: string };
  let other: { server: Server; url: string };

  before(async () => {
    other = await serve((req, res, body) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      res.end('elsewhere');
    });
    main = await serve((req, res, body) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/echo') {
        res.setHeader('www-authenticate', ['Bearer realm="a"', 'Basic realm="b"']);
        res.setHeader('x-one', 'single');
        res.end(JSON.stringify({ method: req.method, body, type: req.headers['content-type'], length: req.headers['content-length'] }));
      } else if (path.startsWith('/hop/')) {
        const left = Number(path.slice('/hop/'.length));
        res.writeHead(302, { location: left > 0 ? `/hop/${left - 1}` : '/echo' }).end('moved');
      } else if (path === '/see-other') res.writeHead(303, { location: '/echo' }).end();
      else if (path === '/temporary') res.writeHead(307, { location: '/echo' }).end();
      else if (path === '/nowhere') res.writeHead(302, { location: 'http://[::1' }).end('moved');
      else if (path === '/away') res.writeHead(301, { location: `${other.url}/landed` }).end();
      else if (path === '/silent')
        return; // never answers
      else if (path === '/stall') {
        res.write('first part');
      } else if (path === '/cut') {
        res.writeHead(200, { 'content-length': '1000' });
        res.write('only part of it', () => res.socket?.destroy());
      } else if (path === '/big') res.end(Buffer.alloc(1024 * 1024, 'x'));
      else res.writeHead(404).end();
    });
  });
  after(async () => {
    main.server.closeAllConnections();
    other.server.closeAllConnections();
    await Promise.all([new Promise((ok) => main.server.close(ok)), new Promise((ok) => other.server.close(ok))]);
  });

  it('answers status, headers and body as undici does: lower-case names, a repeated header as an array', async () => {
    const options: TransportOptions = { ...defaults, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1&b=ü' };
    const ours = await nodeRequest(new URL(`${main.url}/echo`), options);
    const theirs = await undiciRequest(`${main.url}/echo`, { ...options, method: 'POST' });
    assert.equal(ours.statusCode, 200);
    const expected = JSON.parse(await theirs.body.text()) as unknown;
    assert.deepEqual(JSON.parse(await text(ours.body)), expected);
    assert.deepEqual(expected, { method: 'POST', body: 'a=1&b=ü', type: 'application/x-www-form-urlencoded', length: '8' });
    for (const name of ['www-authenticate', 'x-one', 'content-length']) assert.deepEqual(ours.headers[name], theirs.headers[name], name);
    assert.deepEqual(ours.headers['www-authenticate'], ['Bearer realm="a"', 'Basic realm="b"']);
  });

  it('answers a redirect as it is without maxRedirections, and follows up to that many', async () => {
    const unfollowed = await nodeRequest(new URL(`${main.url}/hop/0`), defaults);
    assert.equal(unfollowed.statusCode, 302);
    assert.equal(unfollowed.headers.location, '/echo');
    await unfollowed.body.dump();
    const followed = await nodeRequest(new URL(`${main.url}/hop/2`), { ...defaults, maxRedirections: 3 });
    assert.equal(followed.statusCode, 200);
    assert.equal((JSON.parse(await text(followed.body)) as { method: string }).method, 'GET');
    const tooMany = await nodeRequest(new URL(`${main.url}/hop/2`), { ...defaults, maxRedirections: 2 });
    assert.equal(tooMany.statusCode, 302);
    assert.equal(tooMany.headers.location, '/echo');
    await tooMany.body.dump();
  });

  it('refuses a redirect whose Location is not a URL, and serves the next request', async () => {
    await assert.rejects(nodeRequest(new URL(`${main.url}/nowhere`), { ...defaults, maxRedirections: 1 }), { code: 'ERR_INVALID_URL' });
    assert.equal((await nodeRequest(new URL(`${main.url}/echo`), defaults)).statusCode, 200);
  });

  it('turns a POST into a GET without a body on 303, and keeps both on 307', async () => {
    const post: TransportOptions = { ...defaults, method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'payload', maxRedirections: 1 };
    const seeOther = JSON.parse(await text((await nodeRequest(new URL(`${main.url}/see-other`), post)).body)) as Record<string, unknown>;
    assert.deepEqual(seeOther, { method: 'GET', body: '' });
    const temporary = JSON.parse(await text((await nodeRequest(new URL(`${main.url}/temporary`), post)).body)) as Record<string, unknown>;
    assert.deepEqual(temporary, { method: 'POST', body: 'payload', type: 'text/plain', length: '7' });
  });

  it('drops credentials on a redirect to another origin and keeps the other headers', async () => {
    seen.length = 0;
    const headers = { authorization: 'Bearer secret', cookie: 'c=1', 'proxy-authorization': 'Basic x', 'user-agent': 'berth-test' };
    const res = await nodeRequest(new URL(`${main.url}/away`), { ...defaults, headers, maxRedirections: 1 });
    assert.equal(await text(res.body), 'elsewhere');
    const [first, landed] = seen;
    assert.equal(first?.headers.authorization, 'Bearer secret', 'the first origin gets them');
    assert.equal(landed?.url, '/landed');
    assert.equal(landed?.headers.authorization, undefined);
    assert.equal(landed?.headers.cookie, undefined);
    assert.equal(landed?.headers['proxy-authorization'], undefined);
    assert.equal(landed?.headers['user-agent'], 'berth-test');
  });

  it('fails with undici’s codes when the headers do not come in time or the body stops', async () => {
    await assert.rejects(nodeRequest(new URL(`${main.url}/silent`), { ...defaults, headersTimeout: 200 }), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    const stalled = await nodeRequest(new URL(`${main.url}/stall`), { ...defaults, bodyTimeout: 200 });
    assert.equal(stalled.statusCode, 200);
    await assert.rejects(text(stalled.body), { code: 'UND_ERR_BODY_TIMEOUT' });
  });

  it('keeps Node’s code for a refused connection, and an aborted signal’s reason', async () => {
    const closed = await serve(() => undefined);
    await new Promise((ok) => closed.server.close(ok));
    await assert.rejects(nodeRequest(new URL(`${closed.url}/`), defaults), { code: 'ECONNREFUSED' });
    const controller = new AbortController();
    const pending = nodeRequest(new URL(`${main.url}/silent`), { ...defaults, signal: controller.signal });
    controller.abort(new Error('stopped by the caller'));
    await assert.rejects(pending, /stopped by the caller/);
    await assert.rejects(nodeRequest(new URL('ftp://127.0.0.1/'), defaults), /unsupported protocol/);
  });

  it('fails the body, and nothing else, when the connection breaks in the middle of it', async () => {
    const cut = await nodeRequest(new URL(`${main.url}/cut`), defaults);
    assert.equal(cut.statusCode, 200);
    await assert.rejects(text(cut.body));
    // The next request is served as usual.
    assert.equal((await nodeRequest(new URL(`${main.url}/echo`), defaults)).statusCode, 200);
  });

  it('dump reads a small rest and closes the connection on a large one', async () => {
    const small = await nodeRequest(new URL(`${main.url}/echo`), defaults);
    await small.body.dump();
    assert.ok(small.body.readableEnded, 'read to the end');
    const big = await nodeRequest(new URL(`${main.url}/big`), defaults);
    await big.body.dump({ limit: 64 * 1024 });
    assert.ok(big.body.destroyed && !big.body.readableEnded, 'closed before the end');
  });

  it('lets the process exit with a kept-alive connection open', async () => {
    // The connection stays in the agent's pool after the request; the child must still exit on its own.
    const script = `import { nodeRequest } from './src/remote/node-transport.ts';
const res = await nodeRequest(new URL(${JSON.stringify(`${main.url}/echo`)}), ${JSON.stringify(defaults)});
for await (const chunk of res.body) process.stdout.write(chunk);`;
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 }, (err, out) =>
        resolve({ code: err ? 1 : 0, stdout: out }),
      );
    });
    assert.equal(code, 0);
    assert.equal((JSON.parse(stdout) as { method: string }).method, 'GET');
  });
});
