/**
 * A real browser for the console tests: Debian's Chromium (`/usr/bin/chromium`, installed by
 * scripts/ensure-test-deps.sh; never downloaded) driven by playwright-core, with a fresh profile
 * per run and no background networking. Screenshots go to docs/console/ when
 * BERTH_CONSOLE_SCREENSHOTS=1 (how docs/console.md's pictures are made), else to a temporary
 * directory, so an ordinary test run leaves the tree unchanged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../support/berth-process.js';

export const chromiumPath = process.env['BERTH_CHROMIUM'] ?? '/usr/bin/chromium';

export interface Browser {
  context: BrowserContext;
  page: Page;
  /** Every Content-Security-Policy violation the pages reported (should stay empty). */
  cspViolations: string[];
  /** Console errors of the pages (uncaught exceptions). */
  pageErrors: string[];
  /** Saves a screenshot of the page as `<name>.png`. */
  screenshot(name: string, page?: Page): Promise<void>;
  close(): Promise<void>;
}

export async function openBrowser(): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'berth-chromium-'));
  const shots = process.env['BERTH_CONSOLE_SCREENSHOTS'] === '1' ? join(REPO_ROOT, 'docs', 'console') : await mkdtemp(join(tmpdir(), 'berth-shots-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1180, height: 760 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    timezoneId: 'UTC',
    locale: 'en-US',
  });
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
  };
  context.on('page', watch);
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  return {
    context,
    page,
    cspViolations,
    pageErrors,
    async screenshot(name, target = page) {
      await target.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
      if (process.env['BERTH_CONSOLE_SCREENSHOTS'] !== '1') await rm(shots, { recursive: true, force: true });
    },
  };
}

/** True when no element the markup would have created exists, and the markup is on the page as text. */
export async function shownAsText(page: Page, markup: string): Promise<boolean> {
  // Views load their data after their heading: wait until the text is there.
  await page.getByText(markup).first().waitFor();
  const found = await page.evaluate(`(() => {
    const injected = document.querySelectorAll('img[src="x"], script:not([src]), iframe, svg[onload], [onerror]').length > 0;
    return !injected && window.__xss === undefined && document.body.innerText.includes(${JSON.stringify(markup)});
  })()`);
  return found === true;
}
