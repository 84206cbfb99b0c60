/**
 * `WWW-Authenticate` challenges, read by the grammar of RFC 7235 (§2.1, §4.1) with RFC 7230's
 * tokens and quoted strings:
 *
 *   WWW-Authenticate = 1#challenge
 *   challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
 *   auth-param       = token BWS "=" BWS ( token / quoted-string )
 *
 * Scheme and parameter names are case-insensitive (returned lower-cased); quoted values keep
 * commas and spaces and lose their `\` escapes; several challenges may share one header or come in
 * several headers. A comma ends a parameter; what follows it is another parameter when it is
 * `name=`, else the next challenge.
 *
 * Written by hand (one linear scan, no backtracking regex): the registry clients' parsers on npm
 * are bound to their HTTP stacks, and this is the one parser every client of Berth uses. What the
 * server sends is untrusted: a syntax error drops the challenge it occurs in and everything after
 * it, so a malformed header can lose a challenge but never produce a wrong one.
 */

export interface AuthChallenge {
  /** The auth-scheme, lower-cased (`bearer`, `basic`). */
  scheme: string;
  /** auth-params by lower-cased name, values unquoted; the first of a repeated name counts. */
  params: Readonly<Record<string, string>>;
  /** The token68 form, for a challenge that carries one instead of parameters. */
  token68?: string;
}

/** What a Docker token-auth (`Bearer`) challenge names. */
export interface BearerChallenge {
  /** The token service's URL. */
  realm: string;
  service: string | undefined;
  /** The scope(s) the refused request needs, space-separated, as sent. */
  scope: string | undefined;
  /** Berth: the audience OIDC tokens for this registry must carry (api/oidc.ts); absent elsewhere. */
  audience?: string;
}

/** Every well-formed challenge in the header(s), in order. */
export function parseChallenges(header: string | readonly string[] | null | undefined): AuthChallenge[] {
  if (header === null || header === undefined) return [];
  const text = typeof header === 'string' ? header : header.join(', ');
  const out: AuthChallenge[] = [];
  new Scanner(text).challenges(out);
  return out;
}

/** The first `Bearer` challenge with a realm, or undefined (no header, only Basic, no realm). */
export function bearerChallenge(header: string | readonly string[] | null | undefined): BearerChallenge | undefined {
  for (const challenge of parseChallenges(header)) {
    const { realm, service, scope, audience } = challenge.params;
    if (challenge.scheme !== 'bearer' || !realm) continue;
    return { realm, service, scope, ...(audience ? { audience } : {}) };
  }
  return undefined;
}

class Malformed extends Error {}

/** RFC 7230 `tchar`. */
function isTokenChar(code: number): boolean {
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return true;
  return "!#$%&'*+-.^_`|~".includes(String.fromCharCode(code)) && code < 0x7f;
}

/** RFC 7235 `token68` characters before its `=` padding. */
function isToken68Char(code: number): boolean {
  if ((code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) return true;
  return code === 0x2d || code === 0x2e || code === 0x5f || code === 0x7e || code === 0x2b || code === 0x2f;
}

class Scanner {
  private i = 0;
  constructor(private readonly s: string) {}

  challenges(out: AuthChallenge[]): void {
    try {
      for (;;) {
        this.skipSeparators();
        if (this.atEnd()) return;
        out.push(this.challenge());
      }
    } catch (err) {
      if (!(err instanceof Malformed)) throw err;
    }
  }

  private challenge(): AuthChallenge {
    const scheme = this.token().toLowerCase();
    const afterScheme = this.i;
    this.skipSpaces();
    if (this.atEnd() || this.peek() === ',') return { scheme, params: {} };
    if (this.i === afterScheme) throw new Malformed();
    const token68 = this.tryToken68();
    if (token68 !== undefined) return { scheme, params: {}, token68 };
    const params = new Map<string, string>();
    for (;;) {
      const name = this.token().toLowerCase();
      this.skipSpaces();
      this.expect('=');
      this.skipSpaces();
      const value = this.peek() === '"' ? this.quoted() : this.token();
      if (!params.has(name)) params.set(name, value);
      this.skipSpaces();
      if (this.atEnd()) break;
      this.expect(',');
      this.skipSeparators();
      if (this.atEnd() || !this.paramAhead()) break;
    }
    return { scheme, params: Object.fromEntries(params) };
  }

  /** A token68 that makes up the whole challenge (up to a comma or the end), or undefined. */
  private tryToken68(): string | undefined {
    let j = this.i;
    while (j < this.s.length && isToken68Char(this.s.charCodeAt(j))) j++;
    if (j === this.i) return undefined;
    while (j < this.s.length && this.s[j] === '=') j++;
    let k = j;
    while (k < this.s.length && (this.s[k] === ' ' || this.s[k] === '\t')) k++;
    if (k < this.s.length && this.s[k] !== ',') return undefined;
    const value = this.s.slice(this.i, j);
    this.i = k;
    return value;
  }

  /** Whether the next list element is `name =` (a parameter) rather than a new challenge. */
  private paramAhead(): boolean {
    let j = this.i;
    while (j < this.s.length && isTokenChar(this.s.charCodeAt(j))) j++;
    if (j === this.i) return false;
    while (j < this.s.length && (this.s[j] === ' ' || this.s[j] === '\t')) j++;
    return this.s[j] === '=';
  }

  private token(): string {
    const start = this.i;
    while (this.i < this.s.length && isTokenChar(this.s.charCodeAt(this.i))) this.i++;
    if (this.i === start) throw new Malformed();
    return this.s.slice(start, this.i);
  }

  private quoted(): string {
    this.expect('"');
    let value = '';
    for (;;) {
      if (this.atEnd()) throw new Malformed();
      const code = this.s.charCodeAt(this.i);
      this.i++;
      if (code === 0x22) return value;
      if (code === 0x5c) {
        if (this.atEnd()) throw new Malformed();
        const escaped = this.s.charCodeAt(this.i);
        if (escaped !== 0x09 && (escaped < 0x20 || escaped === 0x7f)) throw new Malformed();
        value += this.s[this.i];
        this.i++;
        continue;
      }
      // qdtext: HTAB, SP, VCHAR except `"` and `\`, obs-text.
      if (code !== 0x09 && (code < 0x20 || code === 0x7f)) throw new Malformed();
      value += String.fromCharCode(code);
    }
  }

  private skipSpaces(): void {
    while (this.i < this.s.length && (this.s[this.i] === ' ' || this.s[this.i] === '\t')) this.i++;
  }

  /** Whitespace and empty list elements (`#rule` allows them). */
  private skipSeparators(): void {
    while (this.i < this.s.length && (this.s[this.i] === ' ' || this.s[this.i] === '\t' || this.s[this.i] === ',')) this.i++;
  }

  private expect(char: string): void {
    if (this.s[this.i] !== char) throw new Malformed();
    this.i++;
  }

  private peek(): string | undefined {
    return this.s[this.i];
  }

  private atEnd(): boolean {
    return this.i >= this.s.length;
  }
}
