/**
 * Small clients for the token protocol, used by the auth tests. They show the server's raw answers
 * (the tests assert on them), so they speak HTTP themselves; paths come from api/urls.ts and
 * challenges are read with the registry client's parser.
 */
import assert from 'node:assert/strict';
import { urls } from '../../src/api/urls.js';
import { parseChallenges } from '../../src/remote/challenge.js';

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

export async function tokenFor(base: string, user: string, password: string, scopes: string[], offline = false): Promise<Record<string, unknown>> {
  const query = new URLSearchParams({ service: 'berth' });
  for (const scope of scopes) query.append('scope', scope);
  if (offline) query.set('offline_token', 'true');
  const res = await fetch(`${base}${urls.token()}?${query.toString()}`, { headers: { Authorization: basic(user, password) } });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as Record<string, unknown>;
}

export async function postForm(base: string, path: string, form: Record<string, string | string[]>): Promise<Response> {
  const body = new URLSearchParams();
  for (const [key, value] of Object.entries(form)) for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
  return fetch(`${base}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body });
}

/** The parameters of the `Bearer` challenge (`realm`, `service`, `scope`, `error`), asserting there is exactly one challenge and it is Bearer. */
export function parseChallenge(header: string | null): Record<string, string> {
  const challenges = parseChallenges(header);
  assert.ok(challenges.length === 1 && challenges[0]?.scheme === 'bearer', `expected a Bearer challenge, got ${header}`);
  return { ...challenges[0].params };
}

export function bearer(token: unknown): Record<string, string> {
  return { Authorization: `Bearer ${String(token)}` };
}
