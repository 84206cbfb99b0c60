/**
 * `berth import <source-ref>` (like `az acr import`): asks a running Berth to copy an image from
 * another registry, server-side and digest-preserving, and by default waits for the job with a
 * progress bar (a terminal) or progress lines (anything else). `berth imports list|show|retry`
 * look after jobs. See docs/import.md.
 *
 * Login: the saved `berth login` (or --username + --password-stdin) is asked for
 * `registry:admin:*` and `pull,push` on every target repository; the token service grants what
 * the principal may, and the server decides (an owner, or push on every target).
 *
 * Source credentials: --source-username with --source-password-stdin, or --source-identity with
 * --source-token-file (a service principal's client id and an OIDC token, for a source Berth that
 * trusts its issuer). They go to the server with the request and are used for that job only.
 *
 * Every failure is one line saying what went wrong and what to do next.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { urls } from '../api/urls.js';
import type { ImportJobView } from '../api/imports.js';
import { isCodedError } from '../shared/coded-error.js';
import { parseImageReference, parseRepositoryReference } from '../remote/reference.js';
import { adminScope, AdminError, apiCall, connectRegistry, type Session } from './admin-client.js';
import { print, printJson, table, type CommandOptions } from './admin.js';

export type { ImportJobView };

export interface ImportOptions extends CommandOptions {
  image?: string[] | undefined;
  repository?: string[] | undefined;
  force?: boolean | undefined;
  referrers?: boolean | undefined;
  wait?: boolean | undefined;
  sourceUsername?: string | undefined;
  sourcePasswordStdin?: boolean | undefined;
  sourceIdentity?: string | undefined;
  sourceTokenFile?: string | undefined;
}

/** How often a waiting CLI asks for the job (env BERTH_IMPORT_POLL_MS for tests). */
const pollMs = Number(process.env['BERTH_IMPORT_POLL_MS'] ?? 500);

export async function importImage(sourceRef: string, options: ImportOptions, io: { readStdin?: () => Promise<string> } = {}): Promise<void> {
  const source = parse(() => parseImageReference(sourceRef));
  const targetTags = (options.image ?? []).map((entry) => {
    const target = parse(() => parseRepositoryReference(entry));
    if (target.digest !== undefined) throw new AdminError(`--image ${entry}: give REPO:TAG (a digest is kept as it is); use --repository for an untagged copy`);
    return target;
  });
  const untagged = (options.repository ?? []).map((entry) => {
    const target = parse(() => parseRepositoryReference(entry));
    if (target.tag !== undefined || target.digest !== undefined) throw new AdminError(`--repository ${entry}: give a repository name only`);
    return target.repository;
  });
  const credentials = await sourceCredentials(options, io.readStdin ?? readStdin);
  // The same default as the server: the source's own repository (and tag).
  const repositories = [...new Set([...targetTags.map((t) => t.repository), ...untagged])];
  if (repositories.length === 0) repositories.push(source.repository);
  const session = await connect(options, [adminScope, ...repositories.map((r) => `repository:${r}:pull,push`)]);

  const sourceImage = `${source.repository}${source.tag !== undefined ? `:${source.tag}` : ''}${source.digest !== undefined ? `@${source.digest}` : ''}`;
  const job = await call<ImportJobView>(session, 'POST', urls.api.import(), {
    source: { registryUri: source.registry, sourceImage, ...(credentials ? { credentials } : {}) },
    targetTags: targetTags.map((t) => `${t.repository}${t.tag !== undefined ? `:${t.tag}` : ''}`),
    untaggedTargetRepositories: untagged,
    mode: options.force ? 'Force' : 'NoForce',
    includeReferrers: options.referrers ?? false,
  });
  await follow(session, job, options);
}

export async function importsList(options: CommandOptions & { status?: string | undefined; limit?: number | undefined }): Promise<void> {
  const session = await connect(options, [adminScope]);
  const { imports } = await call<{ imports: ImportJobView[] }>(session, 'GET', urls.api.imports(options));
  if (options.json) return printJson({ imports });
  if (imports.length === 0) return print('no imports');
  print(
    table([
      ['ID', 'STATUS', 'SOURCE', 'TARGETS', 'CREATED', 'DETAIL'],
      ...imports.map((j) => [j.id, j.status, sourceText(j), targetsText(j), j.createdAt.replace(/\.\d+Z$/, 'Z'), detail(j)]),
    ]),
  );
}

export async function importsShow(id: string, options: CommandOptions): Promise<void> {
  const session = await connect(options, [adminScope]);
  const job = await call<ImportJobView>(session, 'GET', urls.api.importJob(id));
  if (options.json) return printJson(job);
  print(describe(job));
}

export async function importsRetry(id: string, options: ImportOptions, io: { readStdin?: () => Promise<string> } = {}): Promise<void> {
  const credentials = await sourceCredentials(options, io.readStdin ?? readStdin);
  // The job's targets decide the scopes the retry needs: read it first.
  let session = await connect(options, [adminScope]);
  const job = await call<ImportJobView>(session, 'GET', urls.api.importJob(id));
  session = await connect(options, [adminScope, ...job.targets.map((t) => `repository:${t.repository}:pull,push`)]);
  const queued = await call<ImportJobView>(session, 'POST', urls.api.importRetry(id), credentials ? { credentials } : {});
  await follow(session, queued, options);
}

/** Prints the job id and, unless --no-wait, waits for it with progress; fails (one line) if the job fails. */
async function follow(session: Session, queued: ImportJobView, options: ImportOptions): Promise<void> {
  if (options.wait === false) {
    if (options.json) return printJson(queued);
    print(`queued import ${queued.id}: follow it with \`berth imports show ${queued.id}\``);
    return;
  }
  const progress = new ProgressReporter(process.stderr, Boolean(process.stderr.isTTY) && !options.json, `${sourceText(queued)} → ${targetsText(queued)}`);
  let job = queued;
  for (;;) {
    progress.update(job);
    if (job.status === 'succeeded' || job.status === 'failed') break;
    await sleep(pollMs);
    job = await call<ImportJobView>(session, 'GET', urls.api.importJob(job.id));
  }
  progress.done();
  if (job.status === 'failed') throw new AdminError(failureLine(job));
  if (options.json) return printJson(job);
  print(describe(job));
}

/** The one line a failed import ends with: the server's code and message, and how to go on. */
export function failureLine(job: ImportJobView): string {
  const error = job.error ?? { code: 'UNKNOWN', message: 'no reason recorded' };
  const base = `import ${job.id} failed (${error.code}): ${error.message}`;
  if (error.code === 'TAG_EXISTS' || error.code === 'INVALID_REQUEST') return base;
  const credentialsHint = error.code === 'UPSTREAM_DENIED' ? ' with --source-username/--source-password-stdin or --source-identity/--source-token-file' : '';
  return `${base}; then \`berth imports retry ${job.id}\`${credentialsHint} resumes it`;
}

/** A finished (or any) job, for people. */
export function describe(job: ImportJobView): string {
  const lines = [`import ${job.id}: ${job.status}`, `  source   ${sourceText(job)}`, `  targets  ${targetsText(job)}${job.mode === 'Force' ? ' (force)' : ''}`];
  if (job.result) {
    const r = job.result;
    lines.push(`  digest   ${r.digest}`);
    lines.push(`  copied   ${r.manifests} manifest(s), ${r.blobsCopied} blob(s) (${formatBytes(r.bytesCopied)}); ${r.blobsSkipped} blob(s) already present`);
  } else if (job.progress) {
    lines.push(`  progress ${progressText(job)}`);
  }
  if (job.error) lines.push(`  error    ${job.error.code}: ${job.error.message}${job.retryAt ? ` (retrying at ${job.retryAt})` : ''}`);
  return lines.join('\n');
}

/**
 * Progress while waiting: on a terminal one line redrawn in place with a bar; otherwise a line
 * whenever the status changes or another tenth of the bytes arrived (logs stay short).
 */
export class ProgressReporter {
  private lastLine = '';
  private lastDecile = -1;
  private lastStatus = '';
  private drawn = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly tty: boolean,
    private readonly label: string,
  ) {}

  update(job: ImportJobView): void {
    if (this.tty) {
      const line = `${this.label}  ${bar(fraction(job), 24)} ${progressText(job)}`;
      if (line !== this.lastLine) {
        this.out.write(`\r\x1b[2K${line}`);
        this.lastLine = line;
        this.drawn = true;
      }
      return;
    }
    const decile = Math.floor(fraction(job) * 10);
    if (job.status !== this.lastStatus || (job.status === 'running' && decile > this.lastDecile)) {
      this.out.write(
        `import ${job.id}: ${job.status}${job.progress ? ` ${progressText(job)}` : ''}${job.error && job.status === 'queued' ? ` (retrying after ${job.error.code})` : ''}\n`,
      );
      this.lastStatus = job.status;
      this.lastDecile = decile;
    }
  }

  done(): void {
    if (this.tty && this.drawn) this.out.write('\n');
  }
}

function fraction(job: ImportJobView): number {
  if (job.status === 'succeeded') return 1;
  const p = job.progress;
  if (!p) return 0;
  if (p.bytesTotal > 0) return Math.min(1, p.bytesDone / p.bytesTotal);
  return p.blobsTotal > 0 ? p.blobsDone / p.blobsTotal : 0;
}

/** `[#########---------]` for a fraction 0..1. */
export function bar(value: number, width: number): string {
  const filled = Math.round(Math.max(0, Math.min(1, value)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function progressText(job: ImportJobView): string {
  const p = job.progress;
  if (!p) return job.status;
  const percent = Math.floor(fraction(job) * 100);
  const targets = p.targetsTotal > 1 ? `, target ${Math.min(p.targetsDone + 1, p.targetsTotal)}/${p.targetsTotal}` : '';
  return `${percent}% ${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}, blobs ${p.blobsDone}/${p.blobsTotal}, manifests ${p.manifestsDone}/${p.manifestsTotal}${targets}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

function sourceText(job: ImportJobView): string {
  const { registry, repository, reference } = job.source;
  return `${registry}/${repository}${reference.includes(':') ? '@' : ':'}${reference}`;
}

function targetsText(job: ImportJobView): string {
  return job.targets.map((t) => (t.tags.length > 0 ? t.tags.map((tag) => `${t.repository}:${tag}`).join(', ') : `${t.repository} (untagged)`)).join(', ');
}

function detail(job: ImportJobView): string {
  if (job.error) return `${job.error.code}`;
  if (job.result) return job.result.digest.slice(0, 19);
  if (job.progress) return `${Math.floor(fraction(job) * 100)}%`;
  return '';
}

async function sourceCredentials(
  options: ImportOptions,
  readStdinFn: () => Promise<string>,
): Promise<{ username: string; password: string } | { identity: string; token: string } | undefined> {
  if (options.sourceUsername !== undefined || options.sourcePasswordStdin) {
    if (options.sourceIdentity !== undefined || options.sourceTokenFile !== undefined)
      throw new AdminError('give --source-username or --source-identity, not both');
    if (options.sourceUsername === undefined || !options.sourcePasswordStdin)
      throw new AdminError('--source-username and --source-password-stdin go together: pipe the source password in');
    if (options.passwordStdin) throw new AdminError('--password-stdin and --source-password-stdin both read standard input: log in with `berth login` first');
    const password = (await readStdinFn()).replace(/\r?\n$/, '');
    if (!password) throw new AdminError('no source password on standard input (--source-password-stdin)');
    return { username: options.sourceUsername, password };
  }
  if (options.sourceIdentity !== undefined || options.sourceTokenFile !== undefined) {
    if (options.sourceIdentity === undefined || options.sourceTokenFile === undefined)
      throw new AdminError('--source-identity and --source-token-file go together');
    let token: string;
    try {
      token = (await readFile(options.sourceTokenFile, 'utf8')).trim();
    } catch (err) {
      throw new AdminError(`cannot read --source-token-file ${options.sourceTokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!token) throw new AdminError(`--source-token-file ${options.sourceTokenFile} is empty`);
    return { identity: options.sourceIdentity, token };
  }
  return undefined;
}

async function connect(options: CommandOptions, scopes: string[]): Promise<Session> {
  return connectRegistry(options, scopes, { anonymous: true });
}

/** One call to /api/v1 with the session's token; HTTP failures become one-line AdminErrors. */
function call<T>(session: Session, method: string, path: string, body?: unknown): Promise<T> {
  return apiCall(session, method, path, body, {
    explain: ({ status, message }) =>
      status === 404 && path.startsWith(urls.api.importJob('')) ? `${message}: \`berth imports list\` shows the imports you may see` : undefined,
  });
}

function parse<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isCodedError(err)) throw new AdminError(err.message);
    throw err;
  }
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new AdminError('--source-password-stdin reads a pipe: echo "$PASSWORD" | berth import … --source-password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
