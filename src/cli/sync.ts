/**
 * `berth sync …`: selective sync rules of a running registry (owners only), on-demand runs with
 * progress, and per-image status. Talks to /api/v1/sync as the user `berth login` saved, or
 * `--username` + `--password-stdin`, like `berth admin`. Tables for people, the API's JSON with
 * `--json`; a generated webhook secret is printed once on stdout with a warning on stderr.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { urls } from '../api/urls.js';
import type { SyncImageView, SyncRuleView, SyncStatusView, SyncWebhookSecretView } from '../api/sync.js';
import { AdminError, apiCall, connectOwner, type ConnectionOptions, type Session } from './admin-client.js';
import { print, printJson, table, warnSecretShownOnce, type CommandOptions } from './admin.js';

// ---------------------------------------------------------------------------------------------
// The client

export class SyncClient {
  constructor(private readonly session: Session & { accessToken: string }) {}

  get registry(): string {
    return this.session.registry;
  }

  list(): Promise<{ rules: SyncRuleView[] }> {
    return this.call('GET', urls.api.syncRules());
  }

  create(body: Record<string, unknown>): Promise<{ rule: SyncRuleView; webhook: SyncWebhookSecretView | null }> {
    return this.call('POST', urls.api.syncRules(), body);
  }

  get(name: string): Promise<SyncRuleView> {
    return this.call('GET', urls.api.syncRule(name));
  }

  update(name: string, body: Record<string, unknown>): Promise<{ rule: SyncRuleView; webhook: SyncWebhookSecretView | null }> {
    return this.call('PATCH', urls.api.syncRule(name), body);
  }

  async remove(name: string): Promise<void> {
    await this.call('DELETE', urls.api.syncRule(name));
  }

  run(name: string, image?: { repository: string; tag: string }): Promise<{ rule: SyncRuleView; requestedAt: string }> {
    return this.call('POST', urls.api.syncRun(name), image ?? {});
  }

  status(name: string, repository?: string): Promise<SyncStatusView> {
    return this.call('GET', urls.api.syncStatus(name, { repository: repository || undefined }));
  }

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    // The receiver path answers 403 for repositories outside a rule: that is not about ownership.
    return apiCall(this.session, method, path, body, { ownerOnly: !path.includes('/webhook') });
  }
}

export async function connectSync(options: ConnectionOptions): Promise<SyncClient> {
  return new SyncClient(await connectOwner(options));
}

// ---------------------------------------------------------------------------------------------
// Rule options shared by create and update

export interface RuleOptions {
  source?: string;
  sourceUsername?: string;
  sourcePasswordFile?: string;
  sourcePasswordEnv?: string;
  sourcePasswordStdin?: boolean;
  oidcClientId?: string;
  oidcTokenFile?: string;
  anonymous?: boolean;
  repository?: string[];
  include?: string[];
  exclude?: string[];
  clearInclude?: boolean;
  clearExclude?: boolean;
  prefix?: string;
  webhook?: boolean;
  webhookSecretFile?: string;
  rotateWebhookSecret?: boolean;
  poll?: string | false;
  onDemand?: boolean;
  rps?: number;
  concurrency?: number;
  referrers?: boolean;
  enable?: boolean;
  disable?: boolean;
}

/** `30s`, `10m`, `1h`, `2d`, or milliseconds. */
export function parseInterval(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new AdminError(`invalid interval ${JSON.stringify(text)}: give a duration like 30s, 10m, 1h or 1d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  const ms = Number(match[1]) * unit;
  if (ms <= 0) throw new AdminError('an interval must be positive');
  return ms;
}

async function credentialsFrom(options: RuleOptions, readStdin: () => Promise<string>): Promise<Record<string, unknown> | undefined> {
  const basic = options.sourceUsername !== undefined;
  const oidc = options.oidcClientId !== undefined || options.oidcTokenFile !== undefined;
  if ([basic, oidc, options.anonymous === true].filter(Boolean).length > 1) {
    throw new AdminError('give one kind of source credentials: --source-username (basic), --oidc-client-id/--oidc-token-file, or --anonymous');
  }
  if (options.anonymous) return { kind: 'anonymous' };
  if (oidc) {
    if (!options.oidcClientId || !options.oidcTokenFile) throw new AdminError('--oidc-client-id and --oidc-token-file go together');
    return { kind: 'oidc', clientId: options.oidcClientId, tokenFile: options.oidcTokenFile };
  }
  const sources = [options.sourcePasswordFile, options.sourcePasswordEnv, options.sourcePasswordStdin ? 'stdin' : undefined].filter((v) => v !== undefined);
  if (!basic) {
    if (sources.length > 0) throw new AdminError('a source password needs --source-username');
    return undefined;
  }
  if (sources.length !== 1) throw new AdminError('--source-username needs one of --source-password-file, --source-password-env or --source-password-stdin');
  if (options.sourcePasswordFile) return { kind: 'basic', username: options.sourceUsername, passwordFile: options.sourcePasswordFile };
  if (options.sourcePasswordEnv) return { kind: 'basic', username: options.sourceUsername, passwordEnv: options.sourcePasswordEnv };
  const password = (await readStdin()).replace(/\r?\n$/, '');
  if (!password) throw new AdminError('no source password on standard input (--source-password-stdin)');
  return { kind: 'basic', username: options.sourceUsername, password };
}

async function webhookSecret(options: RuleOptions): Promise<string | undefined> {
  if (options.webhookSecretFile === undefined) return undefined;
  try {
    return (await readFile(options.webhookSecretFile, 'utf8')).trim();
  } catch (err) {
    throw new AdminError(`cannot read ${options.webhookSecretFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function limitsFrom(options: RuleOptions): Record<string, number> | undefined {
  const limits: Record<string, number> = {};
  if (options.rps !== undefined) limits['requestsPerSecond'] = options.rps;
  if (options.concurrency !== undefined) limits['concurrency'] = options.concurrency;
  return Object.keys(limits).length > 0 ? limits : undefined;
}

function checkStdin(options: RuleOptions & ConnectionOptions): void {
  if (options.sourcePasswordStdin && options.passwordStdin) {
    throw new AdminError(
      '--source-password-stdin and --password-stdin both read standard input: use the saved login, or --source-password-file/--source-password-env',
    );
  }
}

/** The POST body of `berth sync rule create`. */
export async function createBody(name: string, options: RuleOptions, readStdin: () => Promise<string> = stdin): Promise<Record<string, unknown>> {
  if (!options.source) throw new AdminError('--source URL is required (the registry to sync from, e.g. https://vendor.example.com)');
  if (!options.repository || options.repository.length === 0)
    throw new AdminError('at least one --repository GLOB is required (e.g. --repository "tripinsights/*")');
  const credentials = (await credentialsFrom(options, readStdin)) ?? { kind: 'anonymous' };
  const secret = await webhookSecret(options);
  const limits = limitsFrom(options);
  const triggers: Record<string, unknown> = {};
  if (options.webhook || secret !== undefined) triggers['webhook'] = secret === undefined ? {} : { secret };
  if (typeof options.poll === 'string') triggers['pollIntervalMs'] = parseInterval(options.poll);
  if (options.onDemand === false) triggers['onDemand'] = false;
  return {
    name,
    source: { url: options.source, credentials },
    repositories: options.repository,
    tags: { include: options.include ?? [], exclude: options.exclude ?? [] },
    ...(options.prefix !== undefined ? { destinationPrefix: options.prefix } : {}),
    triggers,
    ...(limits ? { limits } : {}),
    ...(options.referrers === false ? { includeReferrers: false } : {}),
    ...(options.disable ? { enabled: false } : {}),
  };
}

/** The PATCH body of `berth sync rule update`: only what the flags name. */
export async function updateBody(options: RuleOptions, readStdin: () => Promise<string> = stdin): Promise<Record<string, unknown>> {
  const body: Record<string, unknown> = {};
  const credentials = await credentialsFrom(options, readStdin);
  if (options.source !== undefined || credentials !== undefined) {
    body['source'] = { ...(options.source !== undefined ? { url: options.source } : {}), ...(credentials ? { credentials } : {}) };
  }
  if (options.repository && options.repository.length > 0) body['repositories'] = options.repository;
  const tags: Record<string, string[]> = {};
  if (options.include || options.clearInclude) tags['include'] = options.clearInclude ? [] : (options.include ?? []);
  if (options.exclude || options.clearExclude) tags['exclude'] = options.clearExclude ? [] : (options.exclude ?? []);
  if (Object.keys(tags).length > 0) body['tags'] = tags;
  if (options.prefix !== undefined) body['destinationPrefix'] = options.prefix;
  const triggers: Record<string, unknown> = {};
  const secret = await webhookSecret(options);
  if (options.webhook === false) {
    if (secret !== undefined || options.rotateWebhookSecret) throw new AdminError('--no-webhook cannot be combined with a webhook secret');
    triggers['webhook'] = null;
  } else if (secret !== undefined) {
    triggers['webhook'] = { secret };
  } else if (options.rotateWebhookSecret) {
    triggers['webhook'] = { rotateSecret: true };
  } else if (options.webhook === true) {
    triggers['webhook'] = {};
  }
  if (options.poll === false) triggers['pollIntervalMs'] = null;
  else if (typeof options.poll === 'string') triggers['pollIntervalMs'] = parseInterval(options.poll);
  if (options.onDemand !== undefined) triggers['onDemand'] = options.onDemand;
  if (Object.keys(triggers).length > 0) body['triggers'] = triggers;
  const limits = limitsFrom(options);
  if (limits) body['limits'] = limits;
  if (options.referrers !== undefined) body['includeReferrers'] = options.referrers;
  if (options.enable && options.disable) throw new AdminError('--enable and --disable contradict each other');
  if (options.enable) body['enabled'] = true;
  if (options.disable) body['enabled'] = false;
  if (Object.keys(body).length === 0) throw new AdminError('nothing to change: give the flags to update (see berth sync rule update --help)');
  return body;
}

// ---------------------------------------------------------------------------------------------
// Commands

export async function ruleCreate(name: string, options: CommandOptions & RuleOptions): Promise<void> {
  checkStdin(options);
  const body = await createBody(name, options);
  const client = await connectSync(options);
  const created = await client.create(body);
  if (options.json) printJson(created);
  else {
    print(`created sync rule ${created.rule.name}: ${summary(created.rule)}`);
    printWebhook(created.rule, created.webhook);
  }
  if (created.webhook) warnSecretShownOnce();
}

export async function ruleUpdate(name: string, options: CommandOptions & RuleOptions): Promise<void> {
  checkStdin(options);
  const body = await updateBody(options);
  const client = await connectSync(options);
  const updated = await client.update(name, body);
  if (options.json) printJson(updated);
  else {
    print(`updated sync rule ${updated.rule.name}: ${summary(updated.rule)}`);
    printWebhook(updated.rule, updated.webhook);
  }
  if (updated.webhook) warnSecretShownOnce();
}

export async function ruleList(options: CommandOptions): Promise<void> {
  const client = await connectSync(options);
  const { rules } = await client.list();
  if (options.json) return printJson({ rules });
  if (rules.length === 0) return print('no sync rules');
  print(
    table([
      ['NAME', 'STATUS', 'SOURCE', 'REPOSITORIES', 'DESTINATION', 'TRIGGERS', 'LAST SYNC', 'LAST ERROR'],
      ...rules.map((r) => [
        r.name,
        r.enabled ? 'enabled' : 'disabled',
        r.source.url,
        r.repositories.join(','),
        `${r.destinationPrefix}…`,
        triggers(r),
        r.state.lastSyncAt ?? '-',
        r.state.lastError ? truncate(r.state.lastError, 60) : '-',
      ]),
    ]),
  );
}

export async function ruleShow(name: string, options: CommandOptions): Promise<void> {
  const client = await connectSync(options);
  const rule = await client.get(name);
  if (options.json) return printJson(rule);
  print(describe(rule));
}

export async function ruleDelete(name: string, options: CommandOptions): Promise<void> {
  const client = await connectSync(options);
  await client.remove(name);
  if (options.json) return printJson({ deleted: name });
  print(`deleted sync rule ${name} (images already copied stay)`);
}

export async function status(name: string, options: CommandOptions & { repository?: string }): Promise<void> {
  const client = await connectSync(options);
  const found = await client.status(name, options.repository);
  if (options.json) return printJson(found);
  const { rule, queue, images } = found;
  print(`rule ${rule.name} (${rule.enabled ? 'enabled' : 'disabled'}): ${summary(rule)}`);
  print(`  backfilled:     ${rule.state.backfilledAt ?? 'not yet'}`);
  print(`  last reconcile: ${rule.state.lastReconcileAt ?? 'never'}${rule.state.reconciling ? ' (one is running)' : ''}${stats(rule)}`);
  if (rule.state.lastReconcileError) print(`  reconcile error: ${rule.state.lastReconcileError}`);
  print(`  next reconcile: ${rule.state.nextReconcileAt ?? 'on demand or by webhook only'}`);
  print(`  last sync:      ${rule.state.lastSyncAt ?? 'never'}`);
  if (rule.state.lastError) print(`  last error:     ${rule.state.lastError} (${rule.state.lastErrorAt})`);
  print(`  queue:          ${queue.pending} pending, ${queue.running} running, ${queue.failing} retrying`);
  if (images.length === 0) return print('no images synced or checked yet');
  print('');
  print(
    table([
      ['IMAGE', 'DESTINATION', 'DIGEST', 'LAST SYNC', 'LAST CHECKED', 'COPIES', 'LAST ERROR'],
      ...images.map((i) => [
        `${i.repository}:${i.tag}`,
        `${i.destination}:${i.tag}`,
        i.digest ? shortDigest(i.digest) : '-',
        i.lastSyncAt ?? '-',
        i.lastCheckedAt ?? '-',
        String(i.copies),
        i.lastError ? truncate(i.lastError, 80) : '-',
      ]),
    ]),
  );
}

/**
 * `berth sync run`: asks for a run and follows it through the status until the reconcile it asked
 * for has finished and the images it queued are copied (or failed), printing each as it lands.
 * Exits 1 when the reconcile or any image of this run failed.
 */
export async function run(name: string, options: CommandOptions & { image?: string; wait?: boolean; timeout?: string }): Promise<void> {
  const image = options.image === undefined ? undefined : parseImage(options.image);
  const timeoutMs = options.timeout === undefined ? 30 * 60_000 : parseInterval(options.timeout);
  const client = await connectSync(options);
  const started = await client.run(name, image);
  const requestedAt = started.requestedAt;
  if (options.wait === false) {
    if (options.json) return printJson(started);
    return print(`sync of ${name} requested at ${requestedAt}; follow it with \`berth sync status ${name}\``);
  }
  if (!options.json) print(`syncing ${name}: ${summary(started.rule)}`);
  const reported = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  let final: SyncStatusView | undefined;
  for (;;) {
    const current = await client.status(name, image?.repository);
    if (!options.json) {
      for (const line of progressLines(current.images, requestedAt, reported)) print(line);
    }
    if (runFinished(current, requestedAt, image)) {
      final = current;
      break;
    }
    if (Date.now() > deadline)
      throw new AdminError(`the sync of ${name} did not finish within ${options.timeout ?? '30m'}; it goes on in the registry: \`berth sync status ${name}\``);
    await sleep(500);
  }
  const mine = final.images.filter((i) => (image ? i.repository === image.repository && i.tag === image.tag : true));
  const copied = mine.filter((i) => i.lastSyncAt !== null && i.lastSyncAt >= requestedAt).length;
  const failed = mine.filter((i) => i.lastErrorAt !== null && i.lastErrorAt >= requestedAt && i.lastError !== null);
  const reconcileError = image ? null : final.rule.state.lastReconcileError;
  if (options.json) printJson({ rule: final.rule, requestedAt, copied, failed: failed.length, images: mine });
  else {
    const checked = image ? 1 : (final.rule.state.lastReconcileStats?.tags ?? 0);
    print(`done: ${checked} checked, ${copied} copied, ${failed.length} failed`);
  }
  if (failed.length > 0 || reconcileError) {
    throw new AdminError(`the sync of ${name} had errors: ${reconcileError ?? `${failed[0]?.repository}:${failed[0]?.tag}: ${failed[0]?.lastError}`}`);
  }
}

function runFinished(s: SyncStatusView, requestedAt: string, image: { repository: string; tag: string } | undefined): boolean {
  if (image) {
    const queued = s.queue.items.some((i) => i.repository === image.repository && i.tag === image.tag && i.attempts === 0);
    const row = s.images.find((i) => i.repository === image.repository && i.tag === image.tag);
    return !queued && row !== undefined && row.lastCheckedAt !== null && row.lastCheckedAt >= requestedAt;
  }
  const state = s.rule.state;
  const reconciled =
    state.runRequestedAt === null &&
    !state.reconciling &&
    state.lastReconcileStartedAt !== null &&
    state.lastReconcileStartedAt >= requestedAt &&
    state.lastReconcileAt !== null &&
    state.lastReconcileAt >= state.lastReconcileStartedAt;
  // Done when nothing is left but items already retrying after a failure of this run.
  return reconciled && s.queue.items.every((i) => i.attempts > 0);
}

function progressLines(images: SyncImageView[], requestedAt: string, reported: Set<string>): string[] {
  const lines: string[] = [];
  for (const i of images) {
    const key = `${i.repository}:${i.tag}`;
    if (i.lastSyncAt !== null && i.lastSyncAt >= requestedAt && !reported.has(`ok ${key}`)) {
      reported.add(`ok ${key}`);
      lines.push(`  copied ${key} -> ${i.destination}:${i.tag} (${i.digest ? shortDigest(i.digest) : '?'})`);
    }
    if (i.lastError !== null && i.lastErrorAt !== null && i.lastErrorAt >= requestedAt && !reported.has(`err ${key} ${i.lastErrorAt}`)) {
      reported.add(`err ${key} ${i.lastErrorAt}`);
      lines.push(`  failed ${key}: ${i.lastError}`);
    }
  }
  return lines;
}

function parseImage(text: string): { repository: string; tag: string } {
  const colon = text.lastIndexOf(':');
  if (colon <= 0 || colon < text.lastIndexOf('/')) throw new AdminError(`--image takes REPOSITORY:TAG as named on the source, e.g. tripinsights/api:v1`);
  return { repository: text.slice(0, colon), tag: text.slice(colon + 1) };
}

function summary(rule: SyncRuleView): string {
  const filters = [...rule.tags.include.map((f) => `+${f}`), ...rule.tags.exclude.map((f) => `-${f}`)];
  return `${rule.source.url} ${rule.repositories.join(',')}${filters.length > 0 ? ` [${filters.join(' ')}]` : ''} -> ${rule.destinationPrefix || '(same names)'}; ${triggers(rule)}`;
}

function triggers(rule: SyncRuleView): string {
  const parts: string[] = [];
  if (rule.triggers.webhook) parts.push('webhook');
  if (rule.triggers.pollIntervalMs !== null) parts.push(`poll ${showInterval(rule.triggers.pollIntervalMs)}`);
  if (rule.triggers.onDemand) parts.push('on demand');
  return parts.join(', ') || 'none';
}

function describe(rule: SyncRuleView): string {
  const c = rule.source.credentials;
  const credentials =
    c.kind === 'anonymous'
      ? 'anonymous'
      : c.kind === 'oidc'
        ? `oidc: client ${c.clientId}, token file ${c.tokenFile}`
        : `basic: ${c.username}, password ${c.passwordSource === 'file' ? `from file ${c.passwordFile}` : c.passwordSource === 'env' ? `from $${c.passwordEnv}` : 'stored in the registry'}`;
  return [
    `name:          ${rule.name}`,
    `status:        ${rule.enabled ? 'enabled' : 'disabled'}`,
    `source:        ${rule.source.url} (${credentials})`,
    `repositories:  ${rule.repositories.join(', ')}`,
    `tags:          include ${rule.tags.include.join(', ') || 'all'}; exclude ${rule.tags.exclude.join(', ') || 'none'}`,
    `destination:   ${rule.destinationPrefix || '(same names)'}`,
    `triggers:      ${triggers(rule)}`,
    ...(rule.triggers.webhook ? [`webhook URL:   ${rule.triggers.webhook.url}`] : []),
    `limits:        ${rule.limits.requestsPerSecond} requests/s, ${rule.limits.concurrency} at once`,
    `referrers:     ${rule.includeReferrers ? 'copied' : 'not copied'}`,
    `created:       ${rule.createdAt}`,
    `last sync:     ${rule.state.lastSyncAt ?? 'never'}`,
    `last error:    ${rule.state.lastError ?? '-'}`,
  ].join('\n');
}

function printWebhook(rule: SyncRuleView, webhook: SyncWebhookSecretView | null): void {
  if (webhook) {
    print(`webhook URL:    ${webhook.url}`);
    print(`webhook secret: ${webhook.secret}`);
  } else if (rule.triggers.webhook) {
    print(`webhook URL:    ${rule.triggers.webhook.url}`);
  }
}

function stats(rule: SyncRuleView): string {
  const s = rule.state.lastReconcileStats;
  if (!s) return '';
  const catalog = s.catalog === 'unavailable' ? "; the source's catalog was not readable: named and already known repositories only" : '';
  return ` (${s.repositories} repositories, ${s.tags} tags checked, ${s.queued} queued, ${s.errors} errors${catalog})`;
}

function showInterval(ms: number): string {
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function shortDigest(digest: string): string {
  return digest.length > 19 ? `${digest.slice(0, 19)}…` : digest;
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

async function stdin(): Promise<string> {
  if (process.stdin.isTTY) throw new AdminError('--source-password-stdin reads a pipe: echo "$PASSWORD" | berth sync rule … --source-password-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
