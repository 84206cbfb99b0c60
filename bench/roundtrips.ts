/**
 * Database round trips per request type (issue 13, "scale-out on paper"): Berth runs in this
 * process (test/support/server.ts, auth on) on PostgreSQL, and on SQLite for comparison, and
 * bench/lib/query-counter.ts counts what each request sends to the database. Requests go one at a
 * time; each kind is sent a few times after a warm-up and the count must not vary (it is a property
 * of the code, not a measurement).
 *
 *   node --import tsx bench/roundtrips.ts [options]     (normally `npm run bench -- --only roundtrips`)
 *
 * PostgreSQL: BERTH_TEST_POSTGRES_URL (an admin URL) if set, else a private throwaway cluster
 * (scripts/postgres/start.sh), as the tests do. Options (bench/lib/options.ts): --quick (fewer
 * repetitions), --doc, --report-only, --only (which doc, as the other benches).
 * Writes its section of docs/benchmarks.md between `<!-- roundtrips-bench:start -->` and
 * `<!-- roundtrips-bench:end -->`, and bench/results/roundtrips-latest.json.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startOidcIssuer, type OidcIssuer } from '../test/support/oidc-issuer.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../test/support/server.js';
import { callJson, expect, passwordToken, postForm } from './lib/auth-lib.js';
import { insertMarkedSection } from './lib/doc-section.js';
import { MT, randomBlobs } from './lib/fixtures.js';
import { machineInfo } from './lib/machine.js';
import { parseBenchOptions } from './lib/options.js';
import { countPerRequest, installQueryCounter } from './lib/query-counter.js';
import { request, withDigest } from './lib/registry.js';
import { log } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const START = '<!-- roundtrips-bench:start -->';
const END = '<!-- roundtrips-bench:end -->';
const opt = parseBenchOptions();
const digestOf = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

type Backend = 'postgres' | 'sqlite';

interface Row {
  id: string;
  title: string;
  /** Read paths carry the issue's target: at most one round trip. */
  read: boolean;
  counts: Record<Backend, number[]>;
  /** The statements of the last measured request, per backend. */
  statements: Record<Backend, string[]>;
}

interface RoundTripResults {
  startedAt: string;
  finishedAt: string;
  command: string;
  mode: 'full' | 'quick';
  berth: string;
  node: string;
  reps: number;
  rows: Row[];
  /** Queries outside any request (job runners' polls) per second while the requests ran, per backend. */
  backgroundPerSecond: Record<Backend, number>;
}

interface Step {
  id: string;
  title: string;
  read: boolean;
  /** Untimed setup before each measured call (fresh tokens, sessions); returns what `run` needs. */
  prepare?: () => Promise<unknown>;
  run: (prepared: unknown) => Promise<number>;
}

async function measureBackend(
  backend: Backend,
  reps: number,
  issuer: OidcIssuer,
): Promise<{ rows: Omit<Row, 'counts' | 'statements'>[]; counts: number[][]; statements: string[][]; backgroundPerSecond: number }> {
  const previous = process.env['BERTH_TEST_BACKEND'];
  if (backend === 'postgres') process.env['BERTH_TEST_BACKEND'] = 'postgres';
  else delete process.env['BERTH_TEST_BACKEND'];
  let server: TestServer | undefined;
  try {
    server = await startTestServer({ auth: true, federationIssuers: [{ issuer: issuer.issuer }] });
    const counter = countPerRequest(server.app.server);
    const base = server.url;
    const owner = (await passwordToken(base, ownerName, ownerPassword, 'registry:admin:*')).token;
    const created = expect(
      await callJson(base, 'POST', '/api/v1/principals', owner, { kind: 'user', name: 'rt-user', grants: [{ pattern: 'bench/**', permission: 'push' }] }),
      201,
      'create user',
    );
    const password = String((created['secret'] as { value?: unknown })['value']);
    expect(
      await callJson(base, 'POST', '/api/v1/principals', owner, { kind: 'service', name: 'rt-ci', grants: [{ pattern: 'bench/**', permission: 'push' }] }),
      201,
      'create service',
    );
    expect(
      await callJson(base, 'POST', '/api/v1/principals/rt-ci/federated-credentials', owner, {
        name: 'gh',
        issuer: issuer.issuer,
        audiences: ['berth'],
        subject: 'repo:acme/app:*',
      }),
      201,
      'create federated credential',
    );
    const repo = 'bench/rt';
    const pushPull = await passwordToken(base, 'rt-user', password, `repository:${repo}:pull,push`, true);
    const bearer = { authorization: `Bearer ${pushPull.token}` };
    const ok = (status: number, want: number, what: string): number => {
      if (status !== want) throw new Error(`${what}: expected ${want}, got ${status}`);
      return status;
    };
    // Fixture: a small image.
    const [layer] = randomBlobs(1, 64 * 1024);
    if (!layer) throw new Error('unreachable');
    const startUpload = async (): Promise<string> => {
      const res = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { ...bearer, 'content-length': 0 } });
      ok(res.status, 202, 'POST upload');
      return new URL(String(res.headers['location']), base).toString();
    };
    const pushLayer = async (data: Buffer, digest: string) => {
      const put = await request(withDigest(base, await startUpload(), digest), {
        method: 'PUT',
        headers: { ...bearer, 'content-type': 'application/octet-stream' },
        body: data,
      });
      ok(put.status, 201, 'PUT upload');
    };
    await pushLayer(layer.data, layer.digest);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
    const configDigest = digestOf(config);
    await pushLayer(config, configDigest);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MT.manifest,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.data.length }],
      }),
    );
    let tagN = 0;
    const refreshToken = pushPull.refresh ?? '';
    const freshPull = async () => (await passwordToken(base, 'rt-user', password, `repository:${repo}:pull`)).token;
    const steps: Step[] = [
      {
        id: 'manifest-get',
        title: 'Manifest GET by tag (token seen before)',
        read: true,
        run: async () => (await request(`${base}/v2/${repo}/manifests/v1`, { method: 'GET', headers: { ...bearer, accept: MT.manifest } })).status,
      },
      {
        id: 'manifest-get-new-token',
        title: 'Manifest GET by tag, a token not seen before',
        read: true,
        prepare: freshPull,
        run: async (token) =>
          (await request(`${base}/v2/${repo}/manifests/v1`, { method: 'GET', headers: { authorization: `Bearer ${String(token)}`, accept: MT.manifest } }))
            .status,
      },
      {
        id: 'blob-head',
        title: 'Blob HEAD',
        read: true,
        run: async () => (await request(`${base}/v2/${repo}/blobs/${layer.digest}`, { method: 'HEAD', headers: bearer })).status,
      },
      {
        id: 'blob-get',
        title: 'Blob GET (64 KiB)',
        read: true,
        run: async () => (await request(`${base}/v2/${repo}/blobs/${layer.digest}`, { method: 'GET', headers: bearer })).status,
      },
      {
        id: 'tags-list',
        title: 'Tags list',
        read: true,
        run: async () => (await request(`${base}/v2/${repo}/tags/list`, { method: 'GET', headers: bearer })).status,
      },
      {
        id: 'upload-start',
        title: 'Upload POST (start a session)',
        read: false,
        run: async () => (await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { ...bearer, 'content-length': 0 } })).status,
      },
      {
        id: 'upload-patch',
        title: 'Upload PATCH (one 64 KiB chunk)',
        read: false,
        prepare: startUpload,
        run: async (location) =>
          (
            await request(String(location), {
              method: 'PATCH',
              headers: { ...bearer, 'content-type': 'application/octet-stream', 'content-range': `0-${64 * 1024 - 1}` },
              body: randomBytes(64 * 1024),
            })
          ).status,
      },
      {
        id: 'upload-put',
        title: 'Upload PUT ?digest= (complete, 64 KiB body, new blob)',
        read: false,
        prepare: startUpload,
        run: async (location) => {
          const data = randomBytes(64 * 1024);
          return (
            await request(withDigest(base, String(location), digestOf(data)), {
              method: 'PUT',
              headers: { ...bearer, 'content-type': 'application/octet-stream' },
              body: data,
            })
          ).status;
        },
      },
      {
        id: 'manifest-put',
        title: 'Manifest PUT (new tag)',
        read: false,
        run: async () =>
          (await request(`${base}/v2/${repo}/manifests/t${++tagN}`, { method: 'PUT', headers: { ...bearer, 'content-type': MT.manifest }, body: manifest }))
            .status,
      },
      {
        id: 'token-refresh',
        title: 'Token grant: refresh_token',
        read: false,
        run: async () =>
          (
            await postForm(base, '/oauth2/token', {
              grant_type: 'refresh_token',
              refresh_token: refreshToken,
              service: 'berth',
              scope: `repository:${repo}:pull`,
            })
          ).status,
      },
      {
        id: 'token-password',
        title: 'Token grant: password (secret verified before)',
        read: false,
        run: async () =>
          (await postForm(base, '/oauth2/token', { grant_type: 'password', username: 'rt-user', password, service: 'berth', scope: `repository:${repo}:pull` }))
            .status,
      },
      {
        id: 'token-federated',
        title: 'Token grant: client_credentials with an OIDC token',
        read: false,
        prepare: () => issuer.github({ repository: 'acme/app', audience: 'berth' }, { expiresIn: 900 }),
        run: async (assertion) =>
          (
            await postForm(base, '/oauth2/token', {
              grant_type: 'client_credentials',
              client_id: 'rt-ci',
              client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
              client_assertion: String(assertion),
              service: 'berth',
              scope: `repository:${repo}:pull`,
            })
          ).status,
      },
      {
        id: 'token-exchange',
        title: 'Exchange: an OIDC token for a refresh token (`POST /oauth2/exchange`)',
        read: false,
        prepare: () => issuer.github({ repository: 'acme/app', audience: 'berth' }, { expiresIn: 900 }),
        run: async (oidcToken) =>
          (await postForm(base, '/oauth2/exchange', { grant_type: 'access_token', access_token: String(oidcToken), client_id: 'rt-ci', service: 'berth' }))
            .status,
      },
    ];
    // The manifest the reads fetch.
    ok(
      (await request(`${base}/v2/${repo}/manifests/v1`, { method: 'PUT', headers: { ...bearer, 'content-type': MT.manifest }, body: manifest })).status,
      201,
      'PUT manifest',
    );
    const expected: Record<string, number> = { 'upload-start': 202, 'upload-patch': 202, 'upload-put': 201, 'manifest-put': 201 };
    const counts: number[][] = [];
    const statements: string[][] = [];
    const bg0 = counter.background();
    const t0 = Date.now();
    for (const step of steps) {
      const mine: number[] = [];
      let last: string[] = [];
      for (let i = 0; i <= reps; i++) {
        const prepared = step.prepare ? await step.prepare() : undefined;
        const status = await step.run(prepared);
        ok(status, expected[step.id] ?? 200, step.title);
        const q = counter.last()?.statements ?? [];
        if (i > 0) mine.push(q.length); // the first is the warm-up (caches filled)
        last = q;
      }
      counts.push(mine);
      statements.push(last);
      log(`roundtrips: ${backend.padEnd(8)} ${step.id.padEnd(24)} ${mine.join(',')}  [${last.join('; ')}]`);
    }
    const backgroundPerSecond = (counter.background() - bg0) / ((Date.now() - t0) / 1000);
    return { rows: steps.map((s) => ({ id: s.id, title: s.title, read: s.read })), counts, statements, backgroundPerSecond };
  } finally {
    await server?.stop();
    if (previous === undefined) delete process.env['BERTH_TEST_BACKEND'];
    else process.env['BERTH_TEST_BACKEND'] = previous;
  }
}

function spread(xs: readonly number[]): string {
  if (xs.length === 0) return 'n/a';
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return lo === hi ? String(lo) : `${lo}–${hi}`;
}

export function renderRoundTrips(res: RoundTripResults): string {
  const out: string[] = [START, '', '## Database round trips per request', ''];
  out.push(
    `Generated by \`${res.command}\` (driver \`bench/roundtrips.ts\`) on ${res.finishedAt.slice(0, 10)}; Berth ${res.berth}, Node.js ${res.node}. Raw numbers: \`bench/results/roundtrips-latest.json\` (not committed).`,
    '',
    'What one request sends to the metadata database, counted at the driver inside the server process (bench/lib/query-counter.ts): on PostgreSQL every `pg` query is one network round trip (`begin` and `commit` included); on SQLite every statement execution is one call into the library, no network. Auth is on and every request carries a bearer token. Each request kind is sent once to warm the caches, then ' +
      `${res.reps} more times one at a time; the column shows the count (a range if it varied). Target (issue 13): at most one round trip on the read paths.`,
    '',
    '| Request | PostgreSQL round trips | SQLite statements | Target | Statements (PostgreSQL) |',
    '| --- | ---: | ---: | --- | --- |',
  );
  for (const r of res.rows) {
    const pg = r.counts.postgres;
    const verdict = r.read ? (pg.length > 0 && Math.max(...pg) <= 1 ? 'ok (≤ 1)' : '**over** (≤ 1)') : '—';
    out.push(
      `| ${r.title} | ${spread(pg)} | ${spread(r.counts.sqlite)} | ${verdict} | ${r.statements.postgres.length > 0 ? r.statements.postgres.map((s) => `\`${s}\``).join(', ') : 'none'} |`,
    );
  }
  out.push(
    '',
    `Outside requests, the background workers (imports, sync, webhooks, scheduled tasks, upload sweeps) sent ${res.backgroundPerSecond.postgres.toFixed(1)} queries/s on PostgreSQL and ${res.backgroundPerSecond.sqlite.toFixed(1)} statements/s on SQLite while this ran.`,
    '',
    END,
  );
  return out.join('\n');
}

function docPath(partial: boolean): string {
  if (opt.doc !== undefined) return resolve(opt.doc);
  return partial ? join(resultsDir, 'benchmarks-partial.md') : join(repoRoot, 'docs', 'benchmarks.md');
}

async function main(): Promise<void> {
  const only = opt.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const partial = opt.quick === true || (only !== undefined && only.some((g) => g !== 'roundtrips'));
  if (opt['report-only'] !== undefined) {
    const text = await readFile(join(resultsDir, 'roundtrips-latest.json'), 'utf8').catch(() => null);
    if (text !== null) await insertMarkedSection(docPath(partial), renderRoundTrips(JSON.parse(text) as RoundTripResults), { start: START, end: END });
    return;
  }
  if (opt.candidate !== 'berth') {
    log('roundtrips: self-test: nothing to do (Berth only)');
    return;
  }
  const startedAt = new Date().toISOString();
  const reps = opt.quick === true ? 3 : 10;
  installQueryCounter();
  const issuer = await startOidcIssuer();
  try {
    const pgRun = await measureBackend('postgres', reps, issuer);
    const sqliteRun = await measureBackend('sqlite', reps, issuer);
    const rows: Row[] = pgRun.rows.map((r, i) => ({
      ...r,
      counts: { postgres: pgRun.counts[i] ?? [], sqlite: sqliteRun.counts[i] ?? [] },
      statements: { postgres: pgRun.statements[i] ?? [], sqlite: sqliteRun.statements[i] ?? [] },
    }));
    const mi = await machineInfo(repoRoot, repoRoot);
    const args = process.argv.slice(2);
    const res: RoundTripResults = {
      startedAt,
      finishedAt: new Date().toISOString(),
      command: `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ' -- --only roundtrips'}`,
      mode: opt.quick === true ? 'quick' : 'full',
      berth: mi.berth,
      node: mi.node,
      reps,
      rows,
      backgroundPerSecond: { postgres: pgRun.backgroundPerSecond, sqlite: sqliteRun.backgroundPerSecond },
    };
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, `${opt.quick === true ? 'partial-' : ''}roundtrips-latest.json`), JSON.stringify(res, null, 2));
    const doc = docPath(partial);
    await insertMarkedSection(doc, renderRoundTrips(res), { start: START, end: END });
    log(`roundtrips: wrote the section of ${relative(repoRoot, doc)}`);
  } finally {
    await issuer.stop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`roundtrips bench failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
