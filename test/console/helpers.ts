/**
 * A console client without a browser: a cookie jar, the CSRF header and the single-sign-on
 * redirect dance, over plain fetch. The browser tests (`browser.test.ts`) drive the real thing;
 * these helpers test the server's rules one request at a time.
 */
import assert from 'node:assert/strict';

export interface Reply {
  status: number;
  headers: Headers;
  // `any` for test convenience: shapes are asserted field by field
  body: any;
  text: string;
}

/** Cookies by name, from `Set-Cookie` headers (attributes kept for assertions). */
export class CookieJar {
  readonly values = new Map<string, string>();
  readonly raw = new Map<string, string>();

  take(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      this.raw.set(name, line);
      if (value === '' || /max-age=0\b/i.test(line)) this.values.delete(name);
      else this.values.set(name, value);
    }
  }

  header(): string {
    return [...this.values].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

export class ConsoleClient {
  readonly jar = new CookieJar();
  csrf: string | undefined;

  constructor(readonly base: string) {}

  /** A request with the jar's cookies; `csrf: false` leaves the CSRF header out, `origin` sets Origin. */
  async call(
    method: string,
    path: string,
    options: { body?: unknown; csrf?: boolean; origin?: string; headers?: Record<string, string> } = {},
  ): Promise<Reply> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.jar.values.size > 0) headers['Cookie'] = this.jar.header();
    if (options.body !== undefined) headers['Content-Type'] ??= 'application/json';
    if (options.csrf !== false && this.csrf && method !== 'GET') headers['X-Berth-CSRF'] = this.csrf;
    if (options.origin !== undefined) headers['Origin'] = options.origin;
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      redirect: 'manual',
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
    this.jar.take(res.headers);
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return { status: res.status, headers: res.headers, body, text };
  }

  async signIn(username: string, password: string): Promise<Reply> {
    const reply = await this.call('POST', '/console/session', { body: { username, password }, origin: this.base });
    if (reply.status === 200) this.csrf = reply.body.csrfToken;
    return reply;
  }

  async session(): Promise<Reply> {
    const reply = await this.call('GET', '/console/session');
    this.csrf = reply.body?.csrfToken ?? undefined;
    return reply;
  }

  /**
   * Signs in through a single-sign-on provider as `login`, following every redirect like a
   * browser (the provider's cookies kept apart). Returns where Berth finally sent the browser.
   */
  async ssoSignIn(provider: string, login: string, returnTo = '#/'): Promise<string> {
    const providerJar = new CookieJar();
    let url = `${this.base}/console/sso/${provider}/start?return=${encodeURIComponent(returnTo)}`;
    for (let hop = 0; hop < 20; hop++) {
      const target = new URL(url);
      const ours = target.origin === this.base;
      const jar = ours ? this.jar : providerJar;
      let res = await fetch(url, { redirect: 'manual', headers: jar.values.size > 0 ? { Cookie: jar.header() } : {} });
      jar.take(res.headers);
      if (!ours && res.status === 200 && (res.headers.get('content-type') ?? '').includes('text/html')) {
        // The provider's sign-in form: post the login to its action.
        const html = await res.text();
        const action = /action="([^"]+)"/.exec(html)?.[1];
        assert.ok(action, `no sign-in form at ${url}: ${html.slice(0, 200)}`);
        res = await fetch(new URL(action, url), {
          method: 'POST',
          redirect: 'manual',
          headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: providerJar.header() },
          body: new URLSearchParams({ login, password: 'any' }).toString(),
        });
        providerJar.take(res.headers);
      }
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        throw new Error(`single sign-on stopped at ${url} with ${res.status}: ${(await res.text()).slice(0, 300)}`);
      }
      const next = new URL(location, url);
      if (next.origin === this.base && next.pathname === '/') {
        // A failed sign-in's reason is shown once: leave it for the caller to read.
        if (!next.hash.startsWith('#/sign-in')) await this.session();
        return `${next.pathname}${next.hash}`;
      }
      url = next.href;
    }
    throw new Error('too many redirects');
  }
}
