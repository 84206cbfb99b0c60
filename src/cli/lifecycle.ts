/**
 * `berth lifecycle …`: lifecycle policies of a running registry through /api/v1/lifecycle (owners
 * only; docs/lifecycle.md). Policies are written in `berth apply` files (`lifecycle:`); these commands
 * list, show and delete them, preview what a retention rule would delete (a saved one, or one in a
 * file before it is saved), run a rule and follow it, read run reports, and show storage usage.
 * Tables for people, the API's JSON with `--json`.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import {
  formatDuration,
  formatSize,
  isPolicyKind,
  type PoliciesView,
  type PolicyChangeView,
  type PolicyKind,
  type PolicyView,
  type QuotaRule,
  type RetentionPreviewView,
  type RetentionRule,
  type ImmutabilityRule,
  type RunDetailView,
  type RunView,
  type UsageView,
} from '../api/lifecycle.js';
import { urls } from '../api/urls.js';
import { AdminError, apiCall, connectOwner, ownerSession, type ConnectionOptions, type Session } from './admin-client.js';
import { print, printJson, table, type OutputOptions } from './admin.js';

export type LifecycleCommandOptions = ConnectionOptions & OutputOptions;

/** A client for /api/v1/lifecycle holding an owner's access token (also what `berth apply` uses). */
export class LifecycleClient {
  constructor(private readonly session: Session & { accessToken: string }) {}

  get registry(): string {
    return this.session.registry;
  }

  policies = (): Promise<PoliciesView> => this.call('GET', urls.api.lifecyclePolicies());
  get = (kind: PolicyKind, name: string): Promise<PolicyView> => this.call('GET', urls.api.lifecyclePolicy(kind, name));
  put = (kind: PolicyKind, name: string, rule: unknown): Promise<PolicyChangeView> => this.call('PUT', urls.api.lifecyclePolicy(kind, name), rule);
  remove = async (kind: PolicyKind, name: string): Promise<void> => this.call('DELETE', urls.api.lifecyclePolicy(kind, name));
  preview = (name: string | undefined, body: Record<string, unknown>): Promise<RetentionPreviewView> =>
    this.call('POST', urls.api.retentionPreview(name), body);
  run = (name: string, body: { dryRun?: boolean }): Promise<{ run: RunView }> => this.call('POST', urls.api.retentionRun(name), body);
  runs = (query: { policy?: string | undefined; limit?: number | undefined }): Promise<{ runs: RunView[] }> => this.call('GET', urls.api.lifecycleRuns(query));
  report = (id: string, query: { after?: number | undefined; limit?: number | undefined }): Promise<RunDetailView> =>
    this.call('GET', urls.api.lifecycleRun(id, query));
  usage = (query: { pattern?: string | undefined; n?: number | undefined; last?: string | undefined }): Promise<UsageView> =>
    this.call('GET', urls.api.usage(query));
  refreshUsage = (): Promise<{ run: RunView }> => this.call('POST', urls.api.usageRefresh(), {});

  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { registry } = this.session;
    return apiCall(this.session, method, path, body, {
      ownerOnly: true,
      explain: ({ status, code }) => (status === 404 && code === 'UNSUPPORTED' ? `${registry} has no lifecycle API: is it an older Berth?` : undefined),
    });
  }
}

export async function connectLifecycle(options: ConnectionOptions): Promise<LifecycleClient> {
  return new LifecycleClient(await connectOwner(options));
}

/** A lifecycle client over an owner's session (`berth apply` reuses its own login). */
export function lifecycleClient(session: Session): LifecycleClient {
  return new LifecycleClient(ownerSession(session));
}

function kindOf(kind: string): PolicyKind {
  if (!isPolicyKind(kind)) throw new AdminError('the kind is retention, immutability or quotas');
  return kind;
}

// ---------------------------------------------------------------------------------------------
// Policies

/** One line about what a rule does, for tables and plans. */
export function summarize(kind: PolicyKind, rule: RetentionRule | ImmutabilityRule | QuotaRule): string {
  const where = rule.repositories.join(', ');
  const tags = 'tags' in rule && (rule.tags.include.length > 0 || rule.tags.exclude.length > 0) ? ` tags ${showTags(rule.tags)}` : '';
  const off = rule.enabled ? '' : ' (disabled)';
  if (kind === 'retention') {
    const r = rule as RetentionRule;
    const conditions = [
      r.conditions.keepNewest !== undefined ? `beyond the newest ${r.conditions.keepNewest}` : undefined,
      r.conditions.olderThan !== undefined ? `older than ${formatDuration(r.conditions.olderThan)}` : undefined,
      r.conditions.notPulledFor !== undefined ? `not pulled for ${formatDuration(r.conditions.notPulledFor)}` : undefined,
    ].filter(Boolean);
    const schedule = r.schedule ? `, every ${formatDuration(r.schedule.every)}` : ', on request';
    return `${where}${tags}: delete ${r.untagged ? 'images (untagged too)' : 'images'} ${conditions.join(r.match === 'any' ? ' or ' : ' and ')}; ${r.mode}${schedule}${off}`;
  }
  if (kind === 'immutability') {
    const r = rule as ImmutabilityRule;
    const writers = r.writers && r.writers.length > 0 ? `, written only by ${r.writers.length} writer(s)` : '';
    return `${where}${tags}: ${r.immutable ? 'write-once' : 'movable'}${writers}${off}`;
  }
  const q = rule as QuotaRule;
  const parts = [
    q.limit !== undefined ? `limit ${formatSize(q.limit)} (warn at ${Math.round(q.warnAt * 100)}%)` : undefined,
    q.perPrincipal?.bytesPerHour !== undefined ? `${formatSize(q.perPrincipal.bytesPerHour)}/h per principal` : undefined,
    q.perPrincipal?.pushesPerHour !== undefined ? `${q.perPrincipal.pushesPerHour} pushes/h per principal` : undefined,
  ].filter(Boolean);
  return `${where}: ${parts.join(', ')}${off}`;
}

function showTags(tags: { include: readonly string[]; exclude: readonly string[] }): string {
  const shown = (list: readonly string[]) => (list.length > 5 ? `${list.slice(0, 5).join(',')},… (${list.length})` : list.join(','));
  return [tags.include.length > 0 ? shown(tags.include) : '*', tags.exclude.length > 0 ? `except ${shown(tags.exclude)}` : ''].filter(Boolean).join(' ');
}

export async function list(options: LifecycleCommandOptions): Promise<void> {
  const client = await connectLifecycle(options);
  const policies = await client.policies();
  if (options.json) return printJson(policies);
  const rows = (['retention', 'immutability', 'quotas'] as const).flatMap((kind) =>
    (policies[kind] as PolicyView[]).map((p) => [kind, p.name, summarize(kind, p.rule)]),
  );
  if (rows.length === 0) return print(`no lifecycle policies on ${client.registry} (write them in a berth apply file: docs/lifecycle.md)`);
  print(table([['KIND', 'NAME', 'WHAT'], ...rows]));
}

export async function show(kind: string, name: string, options: LifecycleCommandOptions): Promise<void> {
  const client = await connectLifecycle(options);
  const policy = await client.get(kindOf(kind), name);
  if (options.json) return printJson(policy);
  print(`${policy.kind} ${policy.name}: ${summarize(policy.kind, policy.rule)}`);
  print(JSON.stringify(policy.rule, null, 2));
  if (policy.nextRunAt) print(`next run: ${policy.nextRunAt}`);
}

export async function remove(kind: string, name: string, options: LifecycleCommandOptions): Promise<void> {
  const client = await connectLifecycle(options);
  await client.remove(kindOf(kind), name);
  if (options.json) return printJson({ deleted: { kind, name } });
  print(`deleted ${kind} policy ${name}`);
}

// ---------------------------------------------------------------------------------------------
// Retention: preview, run, reports

export interface PreviewOptions extends LifecycleCommandOptions {
  file?: string | undefined;
  repository?: string | undefined;
  after?: string | undefined;
  limit?: number | undefined;
}

/** Reads a retention rule from a YAML or JSON file (one rule, as an entry of `lifecycle.retention` is written). */
async function ruleFromFile(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AdminError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let rule: unknown;
  try {
    rule = parseYaml(text);
  } catch (err) {
    throw new AdminError(`${file}: not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  if (typeof rule !== 'object' || rule === null || Array.isArray(rule))
    throw new AdminError(`${file}: a rule is a mapping (repositories, tags, conditions, …)`);
  return rule as Record<string, unknown>;
}

export async function preview(name: string | undefined, options: PreviewOptions): Promise<void> {
  if ((name === undefined) === (options.file === undefined)) throw new AdminError('preview a saved rule by name, or a rule in a file with -f, not both');
  const body: Record<string, unknown> = {
    ...(options.file !== undefined ? { rule: await ruleFromFile(options.file) } : {}),
    ...(options.repository !== undefined ? { repository: options.repository } : {}),
    ...(options.after !== undefined ? { after: options.after } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
  };
  const client = await connectLifecycle(options);
  const result = await client.preview(name, body);
  if (options.json) return printJson(result);
  print(
    `retention rule ${result.rule}, as of ${result.at}: ${result.candidates} candidate(s) in ${result.repositories} repositor${result.repositories === 1 ? 'y' : 'ies'}`,
  );
  for (const a of result.actions)
    print(
      `- ${a.action === 'delete' ? 'delete' : 'untag '} ${a.repository}@${a.digest.slice(0, 19)}… ${a.tags.length > 0 ? `[${a.tags.join(', ')}] ` : ''}(${a.reason})`,
    );
  for (const k of result.protected)
    print(`  keep ${k.repository}@${k.digest.slice(0, 19)}… ${k.tags.length > 0 ? `[${k.tags.join(', ')}] ` : ''}(${k.reason})`);
  const deletes = result.actions.filter((a) => a.action === 'delete').length;
  print(`would delete ${deletes} manifest(s) and untag ${result.actions.length - deletes} image(s); nothing was deleted`);
  if (result.truncated) print(`(listing stopped at the limit: continue with --after ${result.next ?? ''})`);
}

export async function run(name: string, options: LifecycleCommandOptions & { dryRun?: boolean; enforce?: boolean; wait?: boolean }): Promise<void> {
  if (options.dryRun && options.enforce) throw new AdminError('--dry-run or --enforce, not both');
  const client = await connectLifecycle(options);
  const { run: started } = await client.run(name, options.dryRun ? { dryRun: true } : options.enforce ? { dryRun: false } : {});
  if (options.wait === false) {
    if (options.json) return printJson({ run: started });
    return print(`run ${started.id} of ${name} queued${started.dryRun ? ' (dry run)' : ''}; follow it with \`berth lifecycle report ${started.id}\``);
  }
  if (!options.json) print(`running ${name}${started.dryRun ? ' (dry run: nothing is deleted)' : ''}: run ${started.id}`);
  const page = 1000;
  let after: number | undefined;
  for (;;) {
    const detail = await client.report(started.id, { after, limit: page });
    if (!options.json) for (const line of detail.actions.map(actionLine)) print(line);
    after = detail.next ?? undefined;
    if (detail.actions.length === page) continue; // more of the report is there: read it first
    if (detail.run.status === 'succeeded' || detail.run.status === 'failed') {
      if (options.json) printJson({ run: detail.run });
      else print(runSummary(detail.run));
      if (detail.run.status === 'failed') throw new AdminError(`the run of ${name} failed: ${detail.run.error ?? 'unknown error'}`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function actionLine(a: RunDetailView['actions'][number]): string {
  const what = `${a.action === 'delete' ? 'delete' : 'untag '} ${a.repository}@${a.digest.slice(0, 19)}…${a.tags.length > 0 ? ` [${a.tags.join(', ')}]` : ''}`;
  return `  ${a.outcome === 'deleted' ? 'done' : a.outcome === 'would-delete' ? 'would' : 'skip'} ${what} (${a.outcome === 'skipped' ? (a.detail ?? '') : a.reason})`;
}

function runSummary(run: RunView): string {
  const p = run.progress;
  const verb = run.dryRun ? 'would delete' : 'deleted';
  return `${run.status}: ${p.repositories} repositor${p.repositories === 1 ? 'y' : 'ies'}, ${p.candidates} candidate(s); ${verb} ${p.deletedManifests} manifest(s), untagged ${p.untaggedTags} tag(s), skipped ${p.skipped}`;
}

export async function runs(options: LifecycleCommandOptions & { policy?: string; limit?: number }): Promise<void> {
  const client = await connectLifecycle(options);
  const { runs: list } = await client.runs({ policy: options.policy, limit: options.limit });
  if (options.json) return printJson({ runs: list });
  if (list.length === 0) return print('no runs');
  print(
    table([
      ['ID', 'POLICY', 'TRIGGER', 'STATUS', 'STARTED', 'DELETED', 'SKIPPED'],
      ...list.map((r) => [
        r.id,
        r.policy,
        r.trigger,
        `${r.status}${r.dryRun ? ' (dry)' : ''}`,
        r.startedAt ?? '-',
        String(r.progress.deletedManifests + r.progress.untaggedTags),
        String(r.progress.skipped),
      ]),
    ]),
  );
}

export async function report(id: string, options: LifecycleCommandOptions & { limit?: number }): Promise<void> {
  const client = await connectLifecycle(options);
  const detail = await client.report(id, { limit: options.limit });
  if (options.json) return printJson(detail);
  print(`run ${detail.run.id} of ${detail.run.policy} (${detail.run.trigger}${detail.run.dryRun ? ', dry run' : ''})`);
  for (const line of detail.actions.map(actionLine)) print(line);
  print(runSummary(detail.run));
}

// ---------------------------------------------------------------------------------------------
// Usage

export async function usage(
  pattern: string | undefined,
  options: LifecycleCommandOptions & { refresh?: boolean; limit?: number; after?: string },
): Promise<void> {
  const client = await connectLifecycle(options);
  if (options.refresh) {
    const { run: started } = await client.refreshUsage();
    for (;;) {
      const { run: current } = await client.report(started.id, { limit: 1 });
      if (current.status === 'failed') throw new AdminError(`the usage refresh failed: ${current.error ?? 'unknown error'}`);
      if (current.status === 'succeeded') break;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
  }
  const view = await client.usage({ pattern, n: options.limit, last: options.after });
  if (options.json) return printJson(view);
  if (view.repositories.length > 0) {
    print(
      table([
        ['REPOSITORY', 'LOGICAL', 'EXCLUSIVE', 'MANIFESTS', 'BLOBS', 'COMPUTED'],
        ...view.repositories.map((r) => [
          r.repository,
          formatSize(r.logicalBytes),
          formatSize(r.exclusiveBytes),
          String(r.manifests),
          String(r.blobs),
          r.computedAt,
        ]),
      ]),
    );
  }
  const exclusive = view.total.exclusiveBytes === null ? 'too many to compute' : formatSize(view.total.exclusiveBytes);
  print(
    `${view.pattern}: ${view.total.repositories} repositor${view.total.repositories === 1 ? 'y' : 'ies'}, ${formatSize(view.total.logicalBytes)} logical, ${exclusive} exclusive`,
  );
  if (view.next) print(`(more: --after ${view.next})`);
  for (const q of view.quotas) {
    const used = q.usageBytes === null ? 'not computed yet' : formatSize(q.usageBytes);
    print(`quota ${q.name} (${q.repositories.join(', ')}): ${used}${q.limitBytes !== null ? ` of ${formatSize(q.limitBytes)}` : ''}, ${q.state}`);
  }
}
