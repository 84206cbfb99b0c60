/**
 * Console benchmark: the size of the console's JavaScript (gzipped, the budget is 250 KB) and the
 * time to first render of the repository list in Debian's Chromium with 10,000 repositories, as
 * an owner (every repository visible) and as a person granted one namespace (the server filters
 * the catalog), plus the `/api/v1/repositories` answers behind them.
 *
 *   node --import tsx bench/console.ts [options]      (normally `npm run bench -- --only console`)
 *
 * Accepts the options of bench/run.ts and uses: `--quick` (1,000 repositories, 3 loads), `--reps N`
 * (page loads per measurement, default 7), `--doc PATH`, `--only …` (`console` alone writes
 * docs/benchmarks.md, a mix the partial doc), `--candidate distribution` (nothing to do).
 *
 * The repositories are written into the metadata store directly (one tiny manifest each, the same
 * rows a push writes): pushing 10,000 images over HTTP would measure the push path, not the console.
 * Writes the section between `<!-- console-bench:start -->` and `<!-- console-bench:end -->` and
 * bench/results/console-latest.json.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { openBrowser } from '../test/console/browser.js';
import { ownerName, ownerPassword, startTestServer } from '../test/support/server.js';
import { insertMarkedSection } from './lib/doc-section.js';
import { parseBenchOptions } from './lib/options.js';
import { log, median } from './lib/util.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const resultsDir = join(repoRoot, 'bench', 'results');
const markers = { start: '<!-- console-bench:start -->', end: '<!-- console-bench:end -->' };
const budgetBytes = 250 * 1024;
const opt = parseBenchOptions();

interface Results {
  at: string;
  repositories: number;
  loads: number;
  js: { files: number; bytes: number; gzipBytes: number };
  css: { bytes: number; gzipBytes: number };
  firstRenderMs: { owner: number[]; scoped: number[] };
  apiMs: { owner: number[]; scoped: number[]; search: number[] };
}

async function assetSizes(): Promise<Pick<Results, 'js' | 'css'>> {
  const dir = join(repoRoot, 'dist', 'web', 'assets');
  const files = await readdir(dir).catch(() => {
    throw new Error('dist/web (the built console) is missing: run npm run build first');
  });
  const js = { files: 0, bytes: 0, gzipBytes: 0 };
  const css = { bytes: 0, gzipBytes: 0 };
  for (const file of files) {
    const bytes = await readFile(join(dir, file));
    const gz = gzipSync(bytes, { level: 9 }).length;
    if (file.endsWith('.js')) {
      js.files++;
      js.bytes += bytes.length;
      js.gzipBytes += gz;
    } else if (file.endsWith('.css')) {
      css.bytes += bytes.length;
      css.gzipBytes += gz;
    }
  }
  return { js, css };
}

async function main(): Promise<void> {
  const only = opt.only?.split(',').map((s) => s.trim());
  const quick = opt.quick === true;
  const partial = quick || opt.reps !== undefined || (only !== undefined && only.some((g) => g !== 'console'));
  const docPath = opt.doc !== undefined ? resolve(opt.doc) : partial ? join(resultsDir, 'benchmarks-partial.md') : join(repoRoot, 'docs', 'benchmarks.md');
  if (opt.candidate !== 'berth') {
    log('console: self-test (--candidate distribution): the console bench measures Berth only; skipped');
    return;
  }
  if (opt['report-only'] !== undefined) {
    const text = await readFile(join(resultsDir, 'console-latest.json'), 'utf8').catch(() => null);
    if (text !== null) await insertMarkedSection(docPath, render(JSON.parse(text) as Results), markers);
    return;
  }
  const count = quick ? 1000 : 10_000;
  const loads = opt.reps !== undefined ? Number(opt.reps) : quick ? 3 : 7;
  const sizes = await assetSizes();
  log(`console: JavaScript ${sizes.js.bytes} bytes, ${sizes.js.gzipBytes} gzipped`);

  const server = await startTestServer({ auth: true });
  const browser = await openBrowser();
  try {
    log(`console: writing ${count} repositories`);
    const metadata = server.app.metadata;
    const config = Buffer.from('{}');
    const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
    const now = Date.now();
    for (let i = 0; i < count; i++) {
      const repository = `team-${String(i % 100).padStart(2, '0')}/service-${String(i).padStart(5, '0')}`;
      await metadata.blobs.link(repository, { digest: configDigest, size: config.length }, now);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: 2 },
          layers: [],
          annotations: { i: String(i) },
        }),
      );
      const digest = `sha256:${createHash('sha256').update(manifest).digest('hex')}`;
      await metadata.manifests.put(
        { repository, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', content: manifest, blobs: [configDigest], manifests: [], tag: 'latest' },
        now,
      );
    }
    const owner = await signIn(server.url, ownerName, ownerPassword);
    const scopedSecret = await createScopedUser(server.url, owner);
    const scoped = await signIn(server.url, 'scoped', scopedSecret);

    const apiMs: Results['apiMs'] = { owner: [], scoped: [], search: [] };
    for (let i = 0; i < loads; i++) {
      apiMs.owner.push(await timed(() => call(server.url, owner.cookie, '/api/v1/repositories?n=50')));
      apiMs.scoped.push(await timed(() => call(server.url, scoped.cookie, '/api/v1/repositories?n=50')));
      apiMs.search.push(await timed(() => call(server.url, owner.cookie, `/api/v1/repositories?n=50&q=service-0${i}`)));
    }

    const firstRenderMs: Results['firstRenderMs'] = { owner: [], scoped: [] };
    for (const [who, session] of [
      ['owner', owner],
      ['scoped', scoped],
    ] as const) {
      await browser.context.clearCookies();
      const url = new URL(server.url);
      await browser.context.addCookies([{ name: 'berth_session', value: session.id, domain: url.hostname, path: '/', httpOnly: true, sameSite: 'Strict' }]);
      for (let i = 0; i < loads; i++) {
        // The first navigation is let finish before the measured reload: reloading a page whose
        // load has only just begun once left Playwright "Not attached to an active page".
        await browser.page.goto(`${server.url}/#/`, { waitUntil: 'load' });
        await browser.page.reload({ waitUntil: 'commit' });
        await browser.page.locator('.repo-list a').first().waitFor();
        // Milliseconds from the navigation's start to the first repository on screen.
        firstRenderMs[who].push(Number(await browser.page.evaluate('performance.now()')));
      }
    }
    const results: Results = { at: new Date().toISOString(), repositories: count, loads, ...sizes, firstRenderMs, apiMs };
    await mkdir(resultsDir, { recursive: true });
    await writeFile(join(resultsDir, `${quick ? 'partial-' : ''}console-latest.json`), `${JSON.stringify(results, null, 2)}\n`);
    await insertMarkedSection(docPath, render(results), markers);
    log(`console: wrote ${relative(repoRoot, docPath)}`);
    if (sizes.js.gzipBytes > budgetBytes) {
      log(`console: the JavaScript is ${sizes.js.gzipBytes} bytes gzipped, over the ${budgetBytes}-byte budget`);
      process.exitCode = 1;
    }
  } finally {
    await browser.close();
    await server.stop();
  }
}

async function signIn(base: string, username: string, password: string): Promise<{ id: string; cookie: string }> {
  const res = await fetch(`${base}/console/session`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Origin: base },
    body: JSON.stringify({ username, password }),
  });
  if (res.status !== 200) throw new Error(`sign-in as ${username}: ${res.status} ${await res.text()}`);
  const cookie = (res.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
  const csrf = ((await res.json()) as { csrfToken: string }).csrfToken;
  return { id: cookie.slice(cookie.indexOf('=') + 1), cookie: `${cookie}; csrf=${csrf}` };
}

async function createScopedUser(base: string, owner: { cookie: string }): Promise<string> {
  const csrf = /csrf=([^;]+)/.exec(owner.cookie)?.[1] ?? '';
  const res = await fetch(`${base}/api/v1/principals`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Cookie: owner.cookie.split('; csrf=')[0] ?? '', 'X-Berth-CSRF': csrf, Origin: base },
    body: JSON.stringify({ kind: 'user', name: 'scoped', grants: [{ pattern: 'team-99/*', permission: 'pull' }] }),
  });
  if (res.status !== 201) throw new Error(`create user: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { secret: { value: string } }).secret.value;
}

async function call(base: string, cookie: string, path: string): Promise<void> {
  const res = await fetch(`${base}${path}`, { headers: { Cookie: cookie.split('; csrf=')[0] ?? '' } });
  if (res.status !== 200) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

async function timed(action: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await action();
  return performance.now() - start;
}

function ms(values: number[]): string {
  const m = median(values);
  return m === null || m === undefined ? '—' : `${Math.round(Number(m))} ms`;
}

function render(r: Results): string {
  const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;
  return [
    markers.start,
    '## Web console',
    '',
    `Measured ${r.at} by \`npm run bench -- --only console\` (bench/console.ts): ${r.repositories.toLocaleString('en-US')} repositories, median of ${r.loads} loads, Debian's Chromium headless.`,
    '',
    '| what | value |',
    '| --- | --- |',
    `| JavaScript (${r.js.files} file${r.js.files === 1 ? '' : 's'}) | ${kib(r.js.bytes)}, **${kib(r.js.gzipBytes)} gzipped** (budget 250 KiB) |`,
    `| CSS | ${kib(r.css.bytes)}, ${kib(r.css.gzipBytes)} gzipped |`,
    `| first render of the repository list, owner (all visible) | ${ms(r.firstRenderMs.owner)} |`,
    `| first render of the repository list, one namespace granted (server-filtered) | ${ms(r.firstRenderMs.scoped)} |`,
    `| \`GET /api/v1/repositories?n=50\`, owner | ${ms(r.apiMs.owner)} |`,
    `| \`GET /api/v1/repositories?n=50\`, one namespace granted | ${ms(r.apiMs.scoped)} |`,
    `| \`GET /api/v1/repositories?n=50&q=…\` (name search) | ${ms(r.apiMs.search)} |`,
    '',
    'First render is the time from the start of the navigation to the first repository link on screen (`performance.now()`), page and session already known to the server.',
    markers.end,
  ].join('\n');
}

await main();
