/** Small clients for the token protocol, used by the auth tests. */
import assert from 'node:assert/strict';

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export async function tokenFor(base: string, user: string, password: string, scopes: string[], offline = false): Promise<Record<string, unknown>> {
  const query = new URLSearchParams({ service: 'berth' });
  for (const scope of scopes) query.append('scope', scope);
  if (offline) query.set('offline_token', 'true');
  const res = await fetch(`${base}/oauth2/token?${query.toString()}`, { headers: { Authorization: basic(user, password) } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Record<string, unknown>;
}

export async function postForm(base: string, path: string, form: Record<string, string | string[]>): Promise<Response> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
}

/** Parses `Bearer realm="…",service="…",scope="…"` into its parameters. */
export function parseChallenge(header: string | null): Record<string, string> {
  assert.ok(header !== null && header.startsWith('Bearer '), `expected a Bearer challenge, got ${header}`);
  const out: Record<string, string> = {};
  for (const match of header.slice(7).matchAll(/(\w+)="([^"]*)"/g)) out[match[1] as string] = match[2] as string;
  return out;
}

export function bearer(token: unknown): Record<string, string> {
  return { Authorization: `Bearer ${String(token)}` };
}
