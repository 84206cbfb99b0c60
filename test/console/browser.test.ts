/**
 * The console end to end in a real browser (Debian's Chromium via playwright-core) against a real
 * Berth with real pushes: a password sign-in by keyboard, the image a simulated CI job pushed with
 * its provenance and referrers, a principal and a federated credential created, a failing token
 * tested, a failed webhook redelivered, an import watched to the end, single sign-on through a
 * real OpenID provider, sign-out; and hostile data (markup in claims, annotations, labels,
 * descriptions, audit entries, webhook answers, a search) shown as text in every view that
 * renders it. Screenshots of the main views: docs/console/ (with BERTH_CONSOLE_SCREENSHOTS=1).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Api } from '../admin/helpers.js';
import { basic, postForm, tokenFor } from '../auth/helpers.js';
import { startOidcIssuer, type OidcIssuer } from '../support/oidc-issuer.js';
import { listenOidcProvider, type OidcProvider } from '../support/oidc-provider.js';
import { ownerName, ownerPassword, startTestServer, type TestServer } from '../support/server.js';
import { openBrowser, shownAsText, type Browser } from './browser.js';
import { pushImage, pushReferrer } from './images.js';

const evil = '<img src=x onerror="window.__xss=1">';
const jwtBearer = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const githubIssuer = 'https://token.actions.githubusercontent.com';

describe('the console in a browser', () => {
  let github: OidcIssuer;
  let provider: OidcProvider;
  let source: TestServer;
  let server: TestServer;
  let receiver: Server;
  let receiverAnswer = 500;
  let browser: Browser;
  let owner: Api;
  let base = '';
  let dir = '';

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-console-browser-'));
    github = await startOidcIssuer();
    const pending = await listenOidcProvider();
    await writeFile(join(dir, 'secret'), 'console-client-secret-0123456789');
    receiver = createServer((_req, res) => {
      res.writeHead(receiverAnswer, { 'Content-Type': 'text/html' });
      res.end(receiverAnswer === 200 ? 'ok' : `<b>receiver down</b>${evil}`);
    });
    await new Promise<void>((ok) => receiver.listen(0, '127.0.0.1', ok));
    source = await startTestServer({});
    await pushImage(source.url, '', 'library/tool', '1.0', { layerBytes: 64 * 1024 });
    server = await startTestServer({
      auth: true,
      // Tokens carry GitHub's real issuer; Berth is given the test issuer's keys for it (no discovery).
      federationIssuers: [{ issuer: githubIssuer, jwks: github.jwks() }],
      config: {
        egress: { allowPrivateNetworks: false, allow: ['127.0.0.1/32'] },
        import: { pollIntervalMs: 100, retryDelayMs: 50 },
        webhooks: { maxAttempts: 1, pollIntervalMs: 200 },
        console: {
          sso: [
            {
              name: 'corp',
              displayName: 'Corp SSO',
              issuer: pending.issuer,
              clientId: 'berth-console',
              clientSecretFile: join(dir, 'secret'),
              allowInsecureLoopback: true,
              rules: [{ claims: [{ claim: 'groups', equals: 'dev' }], grants: [{ pattern: 'acme/*', permission: 'pull' }] }],
            },
          ],
        },
      },
    });
    base = server.url;
    provider = await pending.start(`${base}/console/sso/corp/callback`, [{ email: 'ada@example.com', groups: ['dev'] }]);
    owner = await Api.asOwner(base);

    // A CI job (GitHub Actions, simulated) pushes acme/app:v1 with a federated login, then signs it and attaches an SBOM.
    assert.equal((await owner.post('/principals', { kind: 'service', name: 'ci-pusher', grants: [{ pattern: 'acme/*', permission: 'push' }] })).status, 201);
    const credential = await owner.post('/principals/ci-pusher/federated-credentials', {
      name: 'github',
      preset: 'github',
      repository: 'acme/app',
      conditions: [{ claim: 'repository_owner_id', equals: '1234' }],
    });
    assert.equal(credential.status, 201, JSON.stringify(credential.body));
    const oidc = await github.github(
      // The preset trusts tokens for this registry's own audience (issue 11: federation binds to this registry).
      {
        repository: 'acme/app',
        sha: 'feedfacecafebeef0123456789abcdef01234567',
        run_id: '777',
        workflow: evil,
        audience: await server.app.auth.audience.get(),
      },
      { issuer: githubIssuer },
    );
    const exchanged = await postForm(base, '/oauth2/token', {
      grant_type: 'client_credentials',
      client_id: 'ci-pusher',
      client_assertion_type: jwtBearer,
      client_assertion: oidc,
      service: 'berth',
      scope: 'repository:acme/app:pull,push',
    });
    const ci = ((await exchanged.json()) as { access_token: string }).access_token;
    // The webhook first, so the push's delivery fails at the receiver.
    const webhook = await owner.post('/webhooks', {
      name: 'notify',
      url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
      events: ['push'],
    });
    assert.equal(webhook.status, 201, JSON.stringify(webhook.body));
    const image = await pushImage(base, ci, 'acme/app', 'v1', { annotations: { 'org.example.note': evil }, labels: { 'org.example.label': evil } });
    await pushReferrer(base, ci, 'acme/app', image, 'application/vnd.dev.cosign.signature', { 'dev.sigstore.note': evil });
    await pushReferrer(base, ci, 'acme/app', image, 'application/spdx+json', { 'org.example.sbom': 'spdx 2.3' });
    // Hostile data elsewhere: a description, a failed login's user name (the audit log).
    await owner.post('/principals', { kind: 'user', name: 'mallory', description: evil, grants: [] });
    await fetch(`${base}/oauth2/token?service=berth`, { headers: { Authorization: basic(evil, 'nope') } });
    assert.ok(await tokenFor(base, ownerName, ownerPassword, []));
    browser = await openBrowser();
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    await source?.stop();
    await provider?.stop();
    await github?.stop();
    await new Promise<void>((ok) => receiver.close(() => ok()));
    await rm(dir, { recursive: true, force: true });
  });

  it('signs in with a password using only the keyboard', async () => {
    const { page } = browser;
    await page.goto(`${base}/`);
    await page.getByRole('heading', { name: 'Sign in to Berth' }).waitFor();
    await browser.screenshot('sign-in');
    await page.getByLabel('Name').focus();
    await page.keyboard.type(ownerName);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ownerPassword);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Repositories' }).waitFor();
    assert.equal(await page.evaluate('localStorage.length + sessionStorage.length'), 0, 'nothing kept in web storage');
    assert.equal(await page.evaluate('document.cookie'), '', 'the session cookie is HttpOnly');
  });

  it('finds the image a CI job pushed, with its provenance, pull commands, referrers and annotations (markup shown as text)', async () => {
    const { page } = browser;
    await page.getByLabel('Search by name').fill(evil);
    await page.getByText('No repository you may pull has').waitFor();
    assert.ok(await shownAsText(page, evil), 'the search is echoed as text');
    await page.getByLabel('Search by name').fill('acme');
    await page.getByRole('link', { name: 'acme/app' }).click();
    await page.getByRole('heading', { name: 'acme/app' }).waitFor();
    const row = page.getByRole('row').filter({ hasText: 'v1' });
    await row.getByText('GitHub Actions: acme/app').waitFor();
    assert.equal(await row.getByRole('link', { name: 'run 777' }).getAttribute('href'), 'https://github.com/acme/app/actions/runs/777');
    assert.equal(
      await row.getByRole('link', { name: 'feedfacecafe' }).getAttribute('href'),
      'https://github.com/acme/app/commit/feedfacecafebeef0123456789abcdef01234567',
    );
    assert.ok(await shownAsText(page, evil), 'the workflow claim is shown as text');
    const digest = (await row.getByRole('link').first().getAttribute('title')) ?? '';
    assert.match(digest, /^sha256:[0-9a-f]{64}$/);
    const docker = page.getByText(`docker pull ${new URL(base).host}/acme/app@${digest}`);
    await docker.waitFor();
    await page.getByText(`image: ${new URL(base).host}/acme/app@${digest}`).waitFor();
    await page.getByRole('heading', { name: 'Who can push here' }).waitFor();
    await page.getByRole('row').filter({ hasText: 'ci-pusher' }).getByText('push').first().waitFor();
    await browser.screenshot('repository');

    await row.getByRole('link').first().click();
    await page.getByRole('heading', { name: 'Referrers' }).waitFor();
    await page.getByText('application/vnd.dev.cosign.signature').waitFor();
    await page.getByText('application/spdx+json').waitFor();
    await page.getByText('linux/amd64').first().waitFor();
    assert.ok(await shownAsText(page, evil), 'annotations and labels are shown as text');
    await page.evaluate("document.getElementById('referrers-title').scrollIntoView({ block: 'center' })");
    await browser.screenshot('image');
  });

  it('creates a principal (its secret shown once) and a federated credential', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Administration' }).click();
    await page.getByRole('heading', { name: 'Principals' }).waitFor();
    await page.getByLabel('Kind').selectOption('service');
    await page.locator('input[name="name"]').fill('deployer');
    await page.getByLabel('Grants').fill('acme/* push');
    await page.getByRole('button', { name: 'Create principal' }).click();
    await page.getByText('Copy it now').waitFor();
    const secret = (await page.locator('.secret code').textContent()) ?? '';
    assert.ok(secret.length >= 20, secret);
    await browser.screenshot('principals');
    await page.getByRole('link', { name: 'deployer' }).click();
    await page.getByRole('heading', { name: 'Federated credentials' }).waitFor();
    await page.getByLabel('Credential name').fill('gh-deploy');
    await page.getByLabel('Repository').fill('acme/deploy');
    await page.getByLabel('Branch or ref').fill('main');
    await page.getByRole('button', { name: 'Add federated credential' }).click();
    await page.getByText('Federated credential gh-deploy saved.').waitFor();
    // The github preset's subject matches classic and immutable subjects; the repository is a condition.
    await page.getByText('repo:acme*/deploy*:ref:refs/heads/main').waitFor();
    const saved = (await owner.get('/principals/deployer/federated-credentials')).body.credentials;
    assert.deepEqual(
      saved.map((c: { name: string; subject: string }) => [c.name, c.subject]),
      [['gh-deploy', 'repo:acme*/deploy*:ref:refs/heads/main']],
    );
  });

  it('shows a hostile principal description and audit entry as text', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/admin/principals/mallory`);
    await page.getByRole('heading', { name: 'mallory' }).waitFor();
    assert.ok(await shownAsText(page, evil), 'the description is text');
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    await page.getByRole('cell', { name: 'login.failed' }).first().waitFor();
    await page.getByLabel('Event').selectOption('login.failed');
    assert.ok(await shownAsText(page, evil.replace(/"/g, '\\"')), 'the failed login’s user name, in its JSON detail, as text');
  });

  it('tests a token that fails and says which check fails', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Test a token' }).click();
    const audience = await server.app.auth.audience.get();
    const token = await github.github({ repository: 'acme/app', repository_owner_id: '999', audience }, { issuer: githubIssuer });
    await page.getByLabel('Token or claims').fill(token);
    await page.getByRole('button', { name: 'Test' }).click();
    await page.getByRole('heading', { name: 'Refused' }).waitFor();
    await page.getByText(/^Refused \(condition\): claim repository_owner_id \("999"\) does not meet its condition/).waitFor();
    await page.getByText('repository_owner_id is "999"; must equal "1234"').waitFor();
    await browser.screenshot('token-test');
    await page.getByLabel('Token or claims').fill(JSON.stringify({ iss: githubIssuer, sub: evil, aud: audience }));
    await page.getByRole('button', { name: 'Test' }).click();
    await page.getByText(/^Refused \(subject\)/).waitFor();
    assert.ok(await shownAsText(page, JSON.stringify(evil)), 'claims are shown as text');
  });

  it('redelivers a failed webhook and follows it to delivered (the receiver’s answer shown as text)', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Webhooks' }).click();
    await page.getByRole('link', { name: 'notify' }).click();
    const failed = page.getByRole('row').filter({ hasText: 'failed' });
    await failed.first().waitFor();
    await failed.first().getByRole('button', { name: 'Details' }).click();
    await page.getByText('HTTP 500').first().waitFor();
    assert.ok(await shownAsText(page, evil), 'the response snippet is text');
    await browser.screenshot('webhooks');
    receiverAnswer = 200;
    await failed.first().getByRole('button', { name: 'Redeliver' }).click();
    await page.getByText(/queued again/).waitFor();
    await page.getByRole('row').filter({ hasText: 'delivered' }).first().waitFor();
  });

  it('starts an import and watches it finish', async () => {
    const { page } = browser;
    await page.getByRole('link', { name: 'Imports' }).click();
    await page.getByLabel('Source registry').fill(new URL(source.url).host);
    await page.getByLabel('Source image').fill('library/tool:1.0');
    await page.getByLabel('Target tags').fill('imported/tool:1.0');
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByText(/^Import .* queued\.$/).waitFor();
    await page.getByRole('row').filter({ hasText: 'library/tool' }).getByText('succeeded').waitFor();
    await browser.screenshot('imports');
    const tags = await fetch(`${base}/v2/imported/tool/tags/list`, {
      headers: { Authorization: `Bearer ${String((await tokenFor(base, ownerName, ownerPassword, ['repository:imported/tool:pull']))['token'])}` },
    });
    assert.deepEqual(((await tags.json()) as { tags: string[] }).tags, ['1.0']);
  });

  it('fits a phone screen', async () => {
    const { page } = browser;
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.goto(`${base}/#/repo/acme/app`);
      await page.getByRole('heading', { name: 'acme/app' }).waitFor();
      await page.getByText('Pull').first().waitFor();
      await browser.screenshot('phone-repository');
      const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
      const wide = await page.evaluate(
        `JSON.stringify([...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 1).map((e) => e.tagName + '.' + e.className + ':' + getComputedStyle(e).position + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 12))`,
      );
      assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen: ${String(wide)}`);
    } finally {
      await page.setViewportSize({ width: 1180, height: 760 });
    }
  });

  it('signs out: the session ends on the server', async () => {
    const { page } = browser;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to Berth' }).waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/repositories')).status);
    assert.equal(status, 401);
  });

  it('signs in with single sign-on through the OpenID provider and lands where the person was going', async () => {
    const { page } = browser;
    await page.goto(`${base}/#/repo/acme/app`);
    await page.getByRole('link', { name: 'Sign in with Corp SSO' }).click();
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill('anything');
    await page.getByRole('button', { name: 'Sign in at the provider' }).click();
    await page.getByRole('heading', { name: 'acme/app' }).waitFor();
    await page.getByText('ada@example.com').waitFor();
    assert.equal(await page.getByRole('link', { name: 'Administration' }).count(), 0, 'pull on acme/* only: no administration');
    assert.equal(await page.getByRole('button', { name: 'Delete tag' }).count(), 0, 'no delete without the grant');
  });

  it('caused no Content-Security-Policy violation and no script error', () => {
    assert.deepEqual(browser.cspViolations, []);
    assert.deepEqual(browser.pageErrors, []);
  });
});
