/**
 * `berth apply -f berth.yaml [--dry-run]`: make the registry's principals, grants, service
 * principals' federated credentials, settings, pull-through cache rules and lifecycle policies match a file. Reads the server, plans with
 * `auth/desired-state.ts`, prints the plan, applies it (unless --dry-run) through the management
 * API, and prints the secrets of new principals once.
 * Running it again right after changes nothing.
 *
 * A failure part-way leaves the changes made so far in place; running it again finishes the job.
 */
import { readFile } from 'node:fs/promises';
import { legacyAudience } from '../api/oidc.js';
import { urls } from '../api/urls.js';
import type { CacheRuleView } from '../api/cache.js';
import { DesiredStateError, formatChange, parseDesiredState, plan, type Change } from './desired-state.js';
import { formatCacheChange, planCache, type CacheChange } from './desired-cache.js';
import { AdminError, connectAdmin, type AdminClient, type IssuedSecret } from './admin-client.js';
import { print, printJson, warnSecretShownOnce, type CommandOptions } from './admin.js';
import { lifecycleClient } from './lifecycle.js';
import { formatLifecycleChange, planLifecycle, type LifecycleChange } from './lifecycle-state.js';

export interface ApplyOptions extends CommandOptions {
  file: string;
  dryRun?: boolean | undefined;
}

interface NewSecret {
  kind: string;
  name: string;
  secret: IssuedSecret;
}

export async function apply(options: ApplyOptions): Promise<void> {
  if (options.file === '-' && options.passwordStdin) throw new AdminError('-f - and --password-stdin both read standard input: put the file on disk');
  let text: string;
  try {
    text = options.file === '-' ? await readAll(process.stdin) : await readFile(options.file, 'utf8');
  } catch (err) {
    throw new AdminError(`cannot read ${options.file}: ${(err as Error).message}`);
  }
  // Checked before anything is sent; then expanded again with the registry's own audience, which
  // presets without `audiences` get (as the server would give them).
  wrap(() => parseDesiredState(text, options.file, legacyAudience));
  const client = await connectAdmin(options);
  const desired = wrap(() => parseDesiredState(text, options.file, client.audience ?? legacyAudience));
  const [{ principals }, { patterns }] = await Promise.all([client.listPrincipals(), client.getAnonymousPull()]);
  const principalPlan = wrap(() => plan(desired, { principals, anonymousPull: patterns }, { actingAs: client.actor.name }));
  // The `cache:` section, when the file has one: the API's cache rules, after the principals.
  const cachePlan =
    desired.cacheRules === undefined
      ? { changes: [], notes: [], problems: [] }
      : planCache(desired.cacheRules, (await client.api<{ rules: CacheRuleView[] }>('GET', urls.api.cacheRules())).rules, desired.prune);
  if (cachePlan.problems.length > 0) throw new AdminError(cachePlan.problems.join('; '));
  // The `lifecycle:` section, when the file has one: the policies, last.
  const lifecycle = desired.lifecycle === undefined ? undefined : lifecycleClient(client.session);
  const lifecyclePlan =
    lifecycle && desired.lifecycle ? planLifecycle(desired.lifecycle, await lifecycle.policies(), desired.prune) : { changes: [], notes: [] };
  const changes: Array<Change | CacheChange | LifecycleChange> = [...principalPlan.changes, ...cachePlan.changes, ...lifecyclePlan.changes];
  const notes = [...principalPlan.notes, ...cachePlan.notes, ...lifecyclePlan.notes];
  const lines = changes.map((change) =>
    isCacheChange(change) ? formatCacheChange(change) : isLifecycleChange(change) ? formatLifecycleChange(change) : formatChange(change),
  );

  if (!options.json) {
    for (const line of lines) print(line);
    for (const note of notes) print(`  (${note})`);
  }
  if (changes.length === 0 || options.dryRun) {
    if (options.json) printJson({ changes: lines, notes, applied: false, secrets: [] });
    else if (changes.length === 0) print(`no changes: ${client.registry} matches ${options.file}`);
    else print(`dry run: ${changes.length} change(s) not applied`);
    return;
  }

  const secrets: NewSecret[] = [];
  for (const [i, change] of changes.entries()) {
    try {
      if (isLifecycleChange(change)) {
        if (!lifecycle) throw new AdminError('no lifecycle client');
        if (change.op === 'policy-put') await lifecycle.put(change.kind, change.name, change.rule);
        else await lifecycle.remove(change.kind, change.name);
        continue;
      }
      const secret = isCacheChange(change) ? await executeCache(client, change) : await execute(client, change);
      if (secret) secrets.push(secret);
    } catch (err) {
      throw new AdminError(`${lines[i] ?? ''} failed after ${i} of ${changes.length} change(s): ${(err as Error).message}`);
    }
  }
  if (options.json) {
    printJson({ changes: lines, notes, applied: true, secrets });
  } else {
    print(`applied ${changes.length} change(s) to ${client.registry}`);
    for (const s of secrets) print(`secret of ${s.kind} ${s.name}: ${s.secret.name} = ${s.secret.value}`);
  }
  if (secrets.length > 0) warnSecretShownOnce();
}

/** One change, one API call (two for a principal created disabled). Returns a new secret, if any. */
async function execute(client: AdminClient, change: Change): Promise<NewSecret | undefined> {
  switch (change.op) {
    case 'create': {
      const p = change.principal;
      const created = await client.createPrincipal({
        kind: p.kind,
        name: p.name,
        grants: p.grants,
        ...(p.description !== undefined ? { description: p.description } : {}),
        ...(typeof p.expiresAt === 'number' ? { expiresAt: p.expiresAt } : {}),
      });
      if (p.disabled) await client.updatePrincipal(created.principal.id, { disabled: true });
      return { kind: p.kind, name: p.name, secret: created.secret };
    }
    case 'grants':
      await client.setGrants(change.name, change.grants);
      return undefined;
    case 'disable':
    case 'enable':
      await client.updatePrincipal(change.name, { disabled: change.op === 'disable' });
      return undefined;
    case 'describe':
      await client.updatePrincipal(change.name, { description: change.to });
      return undefined;
    case 'expire':
      await client.updatePrincipal(change.name, { expiresAt: change.to });
      return undefined;
    case 'delete':
      await client.deletePrincipal(change.name);
      return undefined;
    case 'anonymous-pull':
      await client.setAnonymousPull(change.patterns);
      return undefined;
    case 'federated-put': {
      // The expanded form: exactly what the plan compared, whatever preset the file used.
      const c = change.credential;
      await client.putFederatedCredential(change.name, {
        name: c.name,
        issuer: c.issuer,
        audiences: c.audiences,
        subject: c.subject,
        conditions: c.conditions,
      });
      return undefined;
    }
    case 'federated-remove':
      await client.deleteFederatedCredential(change.name, change.credential);
      return undefined;
  }
}

function isCacheChange(change: Change | CacheChange | LifecycleChange): change is CacheChange {
  return change.op === 'cache-create' || change.op === 'cache-update' || change.op === 'cache-delete';
}

/** One cache rule change, one API call. */
async function executeCache(client: AdminClient, change: CacheChange): Promise<undefined> {
  switch (change.op) {
    case 'cache-create':
      await client.api('POST', urls.api.cacheRules(), change.rule);
      return undefined;
    case 'cache-update':
      await client.api('PATCH', urls.api.cacheRule(change.name), change.body);
      return undefined;
    case 'cache-delete':
      await client.api('DELETE', urls.api.cacheRule(change.name));
      return undefined;
  }
}

function isLifecycleChange(change: Change | CacheChange | LifecycleChange): change is LifecycleChange {
  return change.op === 'policy-put' || change.op === 'policy-delete';
}

function wrap<T>(action: () => T): T {
  try {
    return action();
  } catch (err) {
    if (err instanceof DesiredStateError) throw new AdminError(err.message);
    throw err;
  }
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}
