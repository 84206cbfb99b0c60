/**
 * The console's static files: `index.html` at `/` and the hashed bundles under `/assets/`, built by
 * `npm run build` into `dist/web` (or `console.assetsDir`). Read from disk on first request and
 * kept in memory (the console is small), so `berth serve` loads none of it at start.
 *
 * Headers: a strict Content-Security-Policy (no inline script or style, nothing from elsewhere, no
 * framing), `nosniff`, no referrer; `index.html` is revalidated on every load, hashed assets are
 * cached for a year (`immutable`): a new build has new file names.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryError } from '../../../oci/errors.js';
import { packageRoot } from '../../../shared/package-root.js';
import { send } from '../../respond.js';
import type { RouteContext } from '../../route.js';

export const contentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Headers every console page and asset carries. */
export const securityHeaders = {
  'Content-Security-Policy': contentSecurityPolicy,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
} as const;

const types: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

interface Loaded {
  body: Buffer;
  type: string;
  etag: string;
}

const cache = new Map<string, Promise<Loaded | undefined>>();

/** The built console's directory: `console.assetsDir`, else `dist/web` of the package Berth runs from. */
export function assetsDirectory(configured: string | undefined): string {
  if (configured) return configured;
  return join(packageRoot(import.meta.url), 'dist', 'web');
}

async function load(dir: string, file: string): Promise<Loaded | undefined> {
  const key = join(dir, file);
  let entry = cache.get(key);
  if (!entry) {
    entry = readFile(key).then(
      (body) => {
        const ext = file.slice(file.lastIndexOf('.'));
        return { body, type: types[ext] ?? 'application/octet-stream', etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
      },
      (err: NodeJS.ErrnoException) => {
        cache.delete(key);
        if (err.code === 'ENOENT' || err.code === 'EISDIR') return undefined;
        throw err;
      },
    );
    cache.set(key, entry);
  }
  return entry;
}

function enabledDir(ctx: RouteContext): string {
  if (!ctx.services.console.enabled) throw new RegistryError('NOT_FOUND', 'the web console is off (console.enabled, or the token service is off)');
  return assetsDirectory(ctx.services.console.settings.assetsDir);
}

/** GET / (and /index.html): the console's page. */
export async function page(ctx: RouteContext): Promise<void> {
  const dir = enabledDir(ctx);
  const file = await load(dir, 'index.html');
  if (!file) {
    throw new RegistryError(
      'NOT_FOUND',
      existsSync(dir) ? 'the console build is incomplete: run npm run build' : 'the console is not built: run npm run build',
    );
  }
  serve(ctx, file, 'no-cache');
}

/** GET /assets/{file}: a hashed bundle, cached for a year. */
export async function asset(ctx: RouteContext): Promise<void> {
  const dir = enabledDir(ctx);
  const name = ctx.params['file'] ?? '';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw new RegistryError('NOT_FOUND');
  const file = await load(dir, join('assets', name));
  if (!file) throw new RegistryError('NOT_FOUND', 'no such console asset (the page may be from an older build: reload it)');
  serve(ctx, file, 'public, max-age=31536000, immutable');
}

function serve(ctx: RouteContext, file: Loaded, cacheControl: string): void {
  const headers = Object.assign({}, securityHeaders, { 'Content-Type': file.type, 'Cache-Control': cacheControl, ETag: file.etag });
  if (ctx.req.headers['if-none-match'] === file.etag) {
    send(ctx.res, 304, headers);
    return;
  }
  send(ctx.res, 200, Object.assign({}, headers, { 'Content-Length': file.body.length }), file.body);
}
