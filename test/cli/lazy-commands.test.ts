/**
 * Commands load what they use: `berth --help` loads the command definitions and commander only,
 * `berth login` and the credential helper load the client and not the server, and `berth serve`'s
 * module graph does not hold @kubernetes/client-node. Each case runs the CLI (from source, with
 * tsx) in a child process with a module loader hook that records every module it loads; one runs
 * the built, bundled command and maps the chunks it loaded back to their sources.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT } from '../support/berth-process.js';

/** Hooks (run on the loader thread): append each loaded URL to the file named in `data.out`. */
const hooks = `import { appendFileSync } from 'node:fs';
let out;
export function initialize(data) { out = data.out; }
export async function load(url, context, next) { appendFileSync(out, url + '\\n'); return next(url, context); }`;
const registerHooks = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hooks)}), import.meta.url, { data: { out: process.env.BERTH_TEST_LOAD_LOG } });`;

let dir = '';
let runs = 0;

/** Runs `node --import tsx ARGS` (from the repository root) and returns the modules it loaded, as paths relative to the root. */
async function loadedBy(args: string[], stdin = ''): Promise<{ modules: string[]; stdout: string; stderr: string }> {
  const log = join(dir, `loads-${++runs}.txt`);
  const env = { ...process.env, BERTH_TEST_LOAD_LOG: log, DOCKER_CONFIG: join(dir, 'docker'), BERTH_CONFIG_DIR: join(dir, 'berth') };
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', `data:text/javascript,${encodeURIComponent(registerHooks)}`, '--import', 'tsx', ...args],
      { cwd: REPO_ROOT, env, encoding: 'utf8', timeout: 120_000 },
      (_err, out, err) => resolve({ stdout: out, stderr: err }),
    );
    child.stdin?.end(stdin);
  });
  const text = await readFile(log, 'utf8').catch(() => '');
  const root = new URL(`file://${REPO_ROOT}/`).href;
  const modules = text
    .split('\n')
    .filter((url) => url.startsWith('file:'))
    .map((url) => (url.startsWith(root) ? url.slice(root.length) : url));
  return { modules, stdout, stderr };
}

/** The bundle's files (relative to the repository) and the sources each holds, from the metafile scripts/bundle.mjs writes. */
async function bundleOutputs(): Promise<Record<string, { inputs: Record<string, unknown> }>> {
  return JSON.parse(await readFile(join(REPO_ROOT, 'dist', 'bin', 'berth.meta.json'), 'utf8')) as Record<string, { inputs: Record<string, unknown> }>;
}

/** The sources behind the bundle's files among `modules`, relative to the repository; other modules as they are. */
async function bundledSources(modules: string[]): Promise<string[]> {
  const outputs = await bundleOutputs();
  return modules.flatMap((m) => {
    const output = outputs[m];
    return output ? Object.keys(output.inputs) : [m];
  });
}

// Modules inside the repository are listed relative to it (a worktree with its own node_modules), others absolute.
const kubernetes = (m: string) => /(^|\/)node_modules\/@kubernetes\/client-node\//.test(m);
const undici = (m: string) => /(^|\/)node_modules\/undici\//.test(m);
const sigstore = (m: string) => /(^|\/)node_modules\/@sigstore\//.test(m);
const openTelemetry = (m: string) => /(^|\/)node_modules\/@opentelemetry\//.test(m) || m === 'src/metrics/otel.ts';
const kyselyEsm = (m: string) => /(^|\/)node_modules\/kysely\/dist\/esm\//.test(m);
const onDemand = (m: string) => /(^|\/)node_modules\/(yaml|semver|prom-client|jose|re2js)\//.test(m) || m === 'src/http/openapi.ts';
const ours = (modules: string[]) => modules.filter((m) => m.startsWith('src/'));

describe('commands load what they use', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-lazy-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('berth --help loads the command definitions only', async () => {
    const { modules, stdout } = await loadedBy(['src/bin/berth.ts', '--help']);
    assert.match(stdout, /Usage: berth/);
    assert.match(stdout, /controller/, 'every command is listed');
    const extra = ours(modules).filter((m) => m !== 'src/bin/berth.ts' && !m.startsWith('src/cli/commands/'));
    assert.deepEqual(extra, [], 'no command implementation');
    assert.equal(modules.filter((m) => kubernetes(m) || undici(m)).length, 0);
  });

  it('berth login loads the client, not the server, undici or the Kubernetes client', async () => {
    const { modules, stderr } = await loadedBy(['src/bin/berth.ts', 'login', '127.0.0.1:9', '--username', 'u', '--password-stdin'], 'password\n');
    assert.match(stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
    assert.ok(modules.includes('src/cli/login.ts') && modules.includes('src/remote/tokens.ts'), 'the command ran');
    assert.ok(modules.includes('src/remote/node-transport.ts'), 'it sent its request');
    const server = ours(modules).filter((m) => /^src\/(app|http|metadata|storage|registry|auth|federation|kube)\//.test(m));
    assert.deepEqual(server, []);
    // The CLI sends over node:http (remote/node-transport.ts); undici is for the server's requests.
    assert.equal(modules.filter((m) => kubernetes(m) || undici(m)).length, 0);
  });

  it('docker-credential-berth list loads no HTTP transport and not the Kubernetes client', async () => {
    const { modules, stdout } = await loadedBy(['src/bin/docker-credential-berth.ts', 'list']);
    assert.equal(stdout.trim(), '{}');
    assert.ok(modules.includes('src/cli/credential-helper.ts'), 'the helper ran');
    assert.equal(modules.filter((m) => kubernetes(m) || undici(m) || m === 'src/remote/node-transport.ts').length, 0);
  });

  it('the built command (dist/bin/berth.js, bundled by scripts/bundle.mjs) loads the same way: --help the definitions, login the client', async () => {
    const help = await loadedBy(['dist/bin/berth.js', '--help']);
    assert.match(help.stdout, /Usage: berth/);
    const helpSources = await bundledSources(help.modules);
    assert.ok(helpSources.includes('src/cli/commands/index.ts'), 'the bundle maps back to its sources');
    assert.deepEqual(
      ours(helpSources).filter((m) => m !== 'src/bin/berth.ts' && !m.startsWith('src/cli/commands/')),
      [],
      'no command implementation',
    );
    const login = await loadedBy(['dist/bin/berth.js', 'login', '127.0.0.1:9', '--username', 'u', '--password-stdin'], 'password\n');
    assert.match(login.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
    const loginSources = await bundledSources(login.modules);
    assert.ok(loginSources.includes('src/cli/login.ts'), 'the command ran');
    assert.deepEqual(
      ours(loginSources).filter((m) => /^src\/(app|http|metadata|storage|registry|auth|federation|kube)\//.test(m)),
      [],
    );
    assert.equal([...help.modules, ...login.modules].filter((m) => kubernetes(m) || undici(m)).length, 0);
  });

  it('the bundle is ASCII, so V8 keeps each file of it one byte a character', async () => {
    const files = Object.keys(await bundleOutputs()).filter((file) => file.endsWith('.js'));
    assert.ok(
      files.some((file) => file.includes('/chunks/serve-')),
      "the metafile lists serve's chunk",
    );
    for (const file of files) {
      const text = await readFile(join(REPO_ROOT, file), 'utf8');
      const at = text.search(/[\u0080-\uffff]/);
      assert.equal(at, -1, `${file} has a non-ASCII character: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}`);
    }
  });

  it("berth serve's module graph does not include @kubernetes/client-node (the controller's does)", async () => {
    const serve = await loadedBy(['--input-type=module', '-e', "await import('./src/cli/serve.ts');"]);
    assert.ok(serve.modules.includes('src/app/app.ts'), 'the server was loaded');
    assert.deepEqual(serve.modules.filter(kubernetes), []);
    assert.deepEqual(serve.modules.filter(sigstore), [], 'the sigstore libraries load only when an attestation is verified');
    assert.deepEqual(serve.modules.filter(openTelemetry), [], 'OpenTelemetry loads only when tracing.endpoint is set');
    // Memory at start (issue 13): what a registry may never use loads on first use.
    assert.deepEqual(serve.modules.filter(undici), [], 'undici loads with the first outbound request');
    assert.deepEqual(serve.modules.filter(kyselyEsm), [], "Kysely's values come from its CommonJS build (src/metadata/kysely.ts)");
    assert.deepEqual(serve.modules.filter(onDemand), [], 'YAML, semver, prom-client, jose, re2js and the OpenAPI builder load on first use');
    // The recorder sees the package where it is used: the same check fails for the controller.
    const controller = await loadedBy(['--input-type=module', '-e', "await import('./src/cli/controller.ts');"]);
    assert.ok(controller.modules.some(kubernetes), 'the controller loads @kubernetes/client-node');
  });
});
