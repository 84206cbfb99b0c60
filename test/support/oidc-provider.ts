/**
 * A real OpenID provider on a random loopback port: panva's `oidc-provider` (the certified
 * implementation), with one confidential client for Berth's console and a plain sign-in page of
 * our own (a form with the person's login; no consent step), so a test or a browser can drive
 * the whole authorization code flow. ID tokens carry the account's claims (`email`,
 * `email_verified`, `name`, `groups`), as providers configured for group claims do.
 *
 * The redirect URI must be known before the provider is built, and Berth must know the issuer
 * before it starts: `listenOidcProvider()` binds the port first, `start(redirectUri)` then builds
 * the provider on it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface Account {
  email: string;
  emailVerified?: boolean;
  name?: string;
  groups?: string[];
}

export interface OidcProvider {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** People who may sign in (by email); anyone else is refused at the sign-in form. */
  accounts: Map<string, Account>;
  /** How many ID tokens were issued (each a finished sign-in). */
  signIns: number;
  stop(): Promise<void>;
}

export interface PendingOidcProvider {
  issuer: string;
  start(redirectUri: string, accounts: Account[]): Promise<OidcProvider>;
  stop(): Promise<void>;
}

/** Binds a loopback port for the provider (its issuer URL is then known). */
export async function listenOidcProvider(): Promise<PendingOidcProvider> {
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(503);
    res.end();
  };
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const stop = () =>
    new Promise<void>((ok) => {
      server.close(() => ok());
      server.closeAllConnections();
    });
  return {
    issuer,
    stop,
    async start(redirectUri, accounts) {
      const state: OidcProvider = {
        issuer,
        clientId: 'berth-console',
        clientSecret: 'console-client-secret-0123456789',
        accounts: new Map(accounts.map((a) => [a.email, a])),
        signIns: 0,
        stop,
      };
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: state.clientId,
            client_secret: state.clientSecret,
            redirect_uris: [redirectUri],
            grant_types: ['authorization_code'],
            response_types: ['code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
        // Claims in the ID token itself, not only at the userinfo endpoint.
        conformIdTokenClaims: false,
        pkce: { required: () => true },
        features: { devInteractions: { enabled: false } },
        interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
        cookies: { keys: ['test-cookie-key-0123456789abcdef'] },
        async findAccount(_ctx, sub) {
          const account = state.accounts.get(sub);
          if (!account) return undefined;
          return {
            accountId: sub,
            async claims() {
              return {
                sub,
                email: account.email,
                email_verified: account.emailVerified ?? true,
                ...(account.name !== undefined ? { name: account.name } : {}),
                ...(account.groups !== undefined ? { groups: account.groups } : {}),
              };
            },
          };
        },
      });
      provider.on('grant.success', () => {
        state.signIns++;
      });
      const callback = provider.callback();
      handler = (req, res) => {
        const match = /^\/interaction\/([^/?]+)(\/login)?/.exec(req.url ?? '');
        if (!match) return void callback(req, res);
        void interaction(provider, state, req, res, match[2] !== undefined).catch((err: unknown) => {
          res.writeHead(500, { 'Content-Type': 'text/plain' });
          res.end(String(err));
        });
      };
      return state;
    },
  };
}

/** The sign-in page (GET) and its submission (POST …/login): the login names the account. */
async function interaction(provider: Provider, state: OidcProvider, req: IncomingMessage, res: ServerResponse, submit: boolean): Promise<void> {
  const details = await provider.interactionDetails(req, res);
  if (!submit) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(
      `<!doctype html><html><head><title>Test provider sign-in</title></head><body><h1>Test provider</h1>` +
        `<form method="post" action="/interaction/${details.uid}/login">` +
        `<label>Email <input name="login" type="email" autocomplete="username"></label> ` +
        `<label>Password <input name="password" type="password"></label> ` +
        `<button type="submit">Sign in at the provider</button></form></body></html>`,
    );
    return;
  }
  const body = new URLSearchParams(await readBody(req));
  const login = body.get('login') ?? '';
  if (!state.accounts.has(login)) {
    res.writeHead(401, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><p>Unknown account at the test provider.</p>');
    return;
  }
  const grant = new provider.Grant({ accountId: login, clientId: String(details.params['client_id']) });
  grant.addOIDCScope(String(details.params['scope'] ?? 'openid'));
  grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: login }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
