/**
 * The console's only way to the server: `fetch` to `/api/v1`, `/v2` and `/console/session`, with
 * the session cookie (HttpOnly: this code never sees it) and, on every change, the session's CSRF
 * token in `X-Berth-CSRF`. Nothing is kept in localStorage. Failures become `ApiFailure`s whose
 * `sentence` says what happened and what to do next (`errors.ts`).
 */
import type { SessionView } from '../../src/api/console.js';
import { sentenceFor } from './errors';

let csrfToken: string | null = null;
const sessionEndedListeners = new Set<() => void>();

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a request finds the session gone (401): the app shows the sign-in page. */
export function onSessionEnded(listener: () => void): () => void {
  sessionEndedListeners.add(listener);
  return () => sessionEndedListeners.delete(listener);
}

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    readonly detail: unknown,
    readonly sentence: string,
  ) {
    super(sentence);
  }
}

interface Options {
  body?: unknown;
  headers?: Record<string, string>;
  /** Do not treat a 401 as "the session ended" (the sign-in form itself). */
  quiet401?: boolean;
}

export async function request<T>(method: string, path: string, options: Options = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-Berth-CSRF'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
  } catch {
    throw new ApiFailure(0, 'NETWORK', '', undefined, 'Berth cannot be reached. Check your connection, then try again.');
  }
  const text = await res.text();
  let body: unknown = undefined;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
  }
  if (res.ok) return body as T;
  const error = (body as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> } | undefined)?.errors?.[0];
  const code = error?.code ?? 'UNKNOWN';
  const message = error?.message ?? '';
  if (res.status === 401 && !options.quiet401) for (const listener of sessionEndedListeners) listener();
  throw new ApiFailure(res.status, code, message, error?.detail, sentenceFor(method, res.status, code, message, error?.detail));
}

export const get = <T>(path: string) => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => request<T>('POST', path, { body: body ?? {} });
export const put = <T>(path: string, body: unknown) => request<T>('PUT', path, { body });
export const patch = <T>(path: string, body: unknown) => request<T>('PATCH', path, { body });
export const del = <T>(path: string) => request<T>('DELETE', path);

export const session = {
  get: () => get<SessionView & { ssoError?: string }>('/console/session'),
  signIn: (username: string, password: string) => request<SessionView>('POST', '/console/session', { body: { username, password }, quiet401: true }),
  signOut: () => request<void>('DELETE', '/console/session'),
};

/** Path segments of management URLs are percent-encoded; repository names are used as they are. */
export const enc = encodeURIComponent;
