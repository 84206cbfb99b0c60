/**
 * A real OIDC issuer on a random loopback port: discovery, JWKS, and tokens shaped like GitHub
 * Actions' and Kubernetes' documented claims. Also serves GitHub's ID-token request endpoint
 * (what `$ACTIONS_ID_TOKEN_REQUEST_URL` points at), so an Actions job can be simulated.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

type Alg = 'RS256' | 'ES256' | 'PS256' | 'EdDSA';

interface SigningKey {
  kid: string;
  alg: Alg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export interface MintOptions {
  /** Seconds until expiry (default 300). */
  expiresIn?: number;
  /** Seconds since the epoch for `iat`/`nbf` (default now). */
  issuedAt?: number;
  /** Sign with a key the issuer does not publish (a forgery), keeping the published kid. */
  foreignKey?: boolean;
  /** Override the header's kid. */
  kid?: string;
  /** Override `iss` (e.g. to impersonate another issuer). */
  issuer?: string;
}

export interface OidcIssuer {
  issuer: string;
  /** GitHub's `ACTIONS_ID_TOKEN_REQUEST_URL` / `_TOKEN` pair, served by this issuer. */
  actionsTokenUrl: string;
  actionsRequestToken: string;
  /** Claims the Actions endpoint puts in its tokens (besides aud from `?audience=`). */
  actionsClaims: Record<string, unknown>;
  /** How many times the JWKS was fetched. */
  jwksFetches: number;
  mint(claims: Record<string, unknown>, options?: MintOptions): Promise<string>;
  github(
    claims: { repository: string; ref?: string; environment?: string; audience?: string } & Record<string, unknown>,
    options?: MintOptions,
  ): Promise<string>;
  kubernetes(claims: { namespace: string; serviceAccount: string; audience?: string }, options?: MintOptions): Promise<string>;
  /** Publishes a new signing key and drops the old one (as issuers do after an overlap). */
  rotateKey(): Promise<void>;
  /** Answers discovery and JWKS with 503 while down. */
  setDown(down: boolean): void;
  /** The public keys, as a static JWKS for Berth's `jwks` setting. */
  jwks(): { keys: JWK[] };
  stop(): Promise<void>;
}

async function newKey(alg: Alg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, alg, privateKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
}

/** With `tls`, the issuer serves HTTPS with that certificate (for CA-bundle tests). */
export async function startOidcIssuer(options: { alg?: Alg; tls?: { cert: string; key: string } } = {}): Promise<OidcIssuer> {
  const alg = options.alg ?? 'RS256';
  let key = await newKey(alg);
  const stranger = await newKey(alg);
  let down = false;
  const requestToken = randomUUID();
  // eslint-disable-next-line prefer-const -- assigned once below, after the handlers that close it are built
  let server: Server | undefined;
  let base = '';

  const state: OidcIssuer = {
    issuer: '',
    actionsTokenUrl: '',
    actionsRequestToken: requestToken,
    actionsClaims: {},
    jwksFetches: 0,
    async mint(claims, opts = {}) {
      const now = opts.issuedAt ?? Math.floor(Date.now() / 1000);
      const signer = opts.foreignKey ? stranger : key;
      return new SignJWT({ jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg, kid: opts.kid ?? key.kid, typ: 'JWT' })
        .setIssuer(opts.issuer ?? base)
        .setIssuedAt(now)
        .setNotBefore(now)
        .setExpirationTime(now + (opts.expiresIn ?? 300))
        .sign(signer.privateKey);
    },
    async github({ repository, ref = 'refs/heads/main', environment, audience = 'berth', ...extra }, opts) {
      const owner = repository.split('/')[0] ?? repository;
      const sub = environment ? `repo:${repository}:environment:${environment}` : `repo:${repository}:ref:${ref}`;
      return state.mint(
        {
          sub,
          aud: audience,
          repository,
          repository_owner: owner,
          repository_owner_id: '1234',
          ref,
          ref_type: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
          sha: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
          workflow: 'build',
          job_workflow_ref: `${repository}/.github/workflows/build.yml@${ref}`,
          run_id: '42',
          run_attempt: '1',
          actor: 'octocat',
          event_name: 'push',
          ...(environment ? { environment } : {}),
          ...extra,
        },
        opts,
      );
    },
    async kubernetes({ namespace, serviceAccount, audience = 'berth' }, opts) {
      return state.mint(
        {
          sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
          aud: [audience],
          'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: randomUUID() }, pod: { name: 'app-0', uid: randomUUID() } },
        },
        opts,
      );
    },
    async rotateKey() {
      key = await newKey(alg);
    },
    setDown(value) {
      down = value;
    },
    jwks: () => ({ keys: [key.publicJwk] }),
    async stop() {
      await new Promise<void>((ok) => {
        server?.close(() => ok());
        server?.closeAllConnections();
      });
    },
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', base);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/actions/token') {
      if (req.headers.authorization !== `bearer ${requestToken}` && req.headers.authorization !== `Bearer ${requestToken}`)
        return json(401, { message: 'bad request token' });
      const audience = url.searchParams.get('audience') ?? 'https://github.com/octo-org';
      void state.github({ repository: 'acme/app', ...state.actionsClaims, audience } as { repository: string }).then((value) => json(200, { count: 1, value }));
      return;
    }
    if (down) return json(503, { error: 'down' });
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: base,
        jwks_uri: `${base}/jwks`,
        id_token_signing_alg_values_supported: [alg],
        response_types_supported: ['id_token'],
        subject_types_supported: ['public'],
      });
    }
    if (url.pathname === '/jwks') {
      state.jwksFetches++;
      return json(200, state.jwks());
    }
    json(404, { error: 'not found' });
  };
  server = options.tls ? createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler) : createServer(handler);
  await new Promise<void>((ok) => server?.listen(0, '127.0.0.1', () => ok()));
  base = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.issuer = base;
  state.actionsTokenUrl = `${base}/actions/token?api-version=2.0`;
  return state;
}
