/**
 * Shared plumbing for the e2e suites: which registry is under test, the
 * fixture layout, temp dirs, and raw HTTP probes of the registry API.
 *
 * The registry under test is Berth (built CLI in dist/) unless
 * BERTH_E2E_TARGET=distribution, which runs the same suites against Debian's
 * docker-registry (CNCF Distribution 2.8) to check the tests themselves.
 * Distribution has no referrers API: those tests are skipped there only.
 */
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { urls } from '../../src/api/urls.js';
import { startBerth } from '../support/berth-process.js';
import type { ServerProcess } from '../support/berth-process.js';
import { createFixtureLayout, MEDIA_TYPES } from '../support/oci-layout.js';
import type { FixtureLayout } from '../support/oci-layout.js';
import { startReferenceRegistry } from '../support/reference-registry.js';

export type TargetKind = 'berth' | 'distribution';

export interface Target {
  kind: TargetKind;
  server: ServerProcess;
  /** `127.0.0.1:<port>`, for image references. */
  host: string;
  /** `http://127.0.0.1:<port>`, for raw API probes. */
  url: string;
  supportsReferrers: boolean;
}

export function targetKind(): TargetKind {
  const value = process.env['BERTH_E2E_TARGET'] ?? 'berth';
  if (value !== 'berth' && value !== 'distribution') {
    throw new Error(`BERTH_E2E_TARGET must be "berth" or "distribution", got ${JSON.stringify(value)}`);
  }
  return value;
}

/** True when the referrers API is expected; known before any server starts (for `skip`). */
export function expectsReferrers(): boolean {
  return targetKind() === 'berth';
}

export async function startTarget(): Promise<Target> {
  const kind = targetKind();
  const server = kind === 'berth' ? await startBerth() : await startReferenceRegistry();
  return { kind, server, host: server.host, url: server.url, supportsReferrers: kind === 'berth' };
}

export interface E2eContext {
  target: Target;
  fixtures: FixtureLayout;
  /** A fresh temp dir, removed by the suite's `after` hook. */
  tempDir(label: string): Promise<string>;
}

/**
 * Registers `before`/`after` hooks in the calling `describe` that start the
 * registry under test and build the fixture layout; returns an accessor that
 * is valid inside tests and hooks registered after this call.
 */
export function useE2eContext(seed: string): () => E2eContext {
  let context: E2eContext | undefined;
  const dirs: string[] = [];
  let target: Target | undefined;

  before(async () => {
    const tempDir = async (label: string): Promise<string> => {
      const dir = await makeLowercaseTempDir(label);
      dirs.push(dir);
      return dir;
    };
    target = await startTarget();
    const fixtures = await createFixtureLayout(await tempDir('layout'), seed);
    context = { target, fixtures, tempDir };
  });

  after(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    if (target === undefined) return;
    const exit = await target.server.stop();
    // Contract: Berth shuts down gracefully on SIGTERM. (Distribution just dies of the signal.)
    if (target.kind === 'berth') {
      const { stderr } = target.server.output();
      assert.deepEqual(exit, { code: 0, signal: null }, `Berth did not exit cleanly on SIGTERM\n--- stderr ---\n${stderr}`);
    }
  });

  return () => {
    if (context === undefined) throw new Error('e2e context used before its before() hook ran (or that hook failed)');
    return context;
  };
}

/**
 * mkdtemp's suffix may contain capitals, but `podman pull oci:<dir>` names the
 * image after the path and rejects capitals: so lowercase hex only.
 */
export async function makeLowercaseTempDir(label: string): Promise<string> {
  const dir = join(tmpdir(), `berth-e2e-${label}-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { recursive: false });
  return dir;
}

let repoCounter = 0;
/** A repository name unique within this process, e.g. `e2e/skopeo/single-1`. */
export function uniqueRepo(...parts: string[]): string {
  repoCounter += 1;
  return `e2e/${parts.join('/')}-${repoCounter}`;
}

// ---------------------------------------------------------------------------
// Raw HTTP probes (what a client library would see, without one in the way)

/** Every manifest media type the fixtures use, so the registry never has to convert. */
export const MANIFEST_ACCEPT = [MEDIA_TYPES.imageManifest, MEDIA_TYPES.imageIndex].join(', ');

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
}

export async function httpGet(url: string, accept = MANIFEST_ACCEPT, method = 'GET'): Promise<HttpResult> {
  const res = await fetch(url, { method, headers: { Accept: accept } });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

export function getManifest(target: Target, repo: string, reference: string, method = 'GET'): Promise<HttpResult> {
  return httpGet(`${target.url}${urls.manifest(repo, reference)}`, MANIFEST_ACCEPT, method);
}

/** Parses an OCI/Distribution error body and returns its error codes (e.g. ["MANIFEST_UNKNOWN"]). */
export function errorCodes(result: HttpResult): string[] {
  try {
    const parsed = JSON.parse(result.body.toString('utf8')) as { errors?: { code?: string }[] };
    return (parsed.errors ?? []).map((e) => e.code ?? '(no code)');
  } catch {
    return [];
  }
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** One-line description of a response for assertion messages. */
export function describeResponse(label: string, result: HttpResult): string {
  const headers = [...result.headers.entries()].map(([k, v]) => `${k}: ${v}`).join('\n  ');
  return `${label} -> ${result.status}\n  ${headers}\n  body: ${result.body.toString('utf8').slice(0, 2000)}`;
}
