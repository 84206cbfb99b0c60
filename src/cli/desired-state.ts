/**
 * `berth apply`'s model, without I/O: parse a declarative file (berth.yaml) into the desired
 * principals and settings, and plan the changes that bring an observed registry to it. Applying
 * the plan and then planning again yields no changes (the plan is idempotent by construction:
 * every change sets a value to exactly what the file says).
 *
 * What the file manages (docs/management.md has the format):
 * - every principal it lists, matched by name: its grants (omitted = none) and `disabled`
 *   (omitted = enabled) always; `description` and `expiresAt` only when given (null clears);
 * - a service principal's federated credentials (omitted = none), matched by name; one whose
 *   trust changed is replaced, which revokes the refresh tokens it bought;
 * - `settings.anonymousPull` only when given;
 * - lifecycle policies (`lifecycle:`, by kind) only for the kinds given (`lifecycle-state.ts`);
 * - principals it does not list are deleted only with `prune: true`, and never the admin user
 *   (configuration owns it) nor the principal applying the file.
 * Secrets are never in the file: new principals get a generated one, printed once.
 */
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { specificIssue } from '../api/validation.js';
import {
  canonicalCondition,
  federatedCredentialInput,
  resolveFederatedCredential,
  showConditions,
  showList,
  showTrust,
  type FederatedCredentialInput,
} from '../api/federated-credentials.js';
import { PresetError, type FederatedTrust } from '../api/federation-presets.js';
import { legacyAudience } from '../api/oidc.js';
import type { CacheRuleInput } from '../api/cache.js';
import type { ClaimCondition } from '../api/principals.js';
import { isOwner, isPermission, isValidPattern, principalNamePattern, principalNameRule, type Grant, type Permission } from '../api/principals.js';
import { cacheFileSection } from './desired-cache.js';
import { LifecycleStateError, parseLifecycle, type DesiredLifecycle } from './lifecycle-state.js';

export type DeclaredKind = 'user' | 'service' | 'token';

export interface DesiredPrincipal {
  kind: DeclaredKind;
  name: string;
  /** Undefined: not managed by the file. */
  description: string | undefined;
  disabled: boolean;
  /** Milliseconds since the epoch; null: never expires; undefined: not managed by the file. */
  expiresAt: number | null | undefined;
  /** Sorted by pattern, then permission; no duplicates. */
  grants: Grant[];
  /** Service principals only (else empty); presets already expanded; in file order. */
  federatedCredentials: DesiredFederatedCredential[];
}

/** A federated credential as the server stores it: a preset is expanded when the file is read. */
export interface DesiredFederatedCredential extends FederatedTrust {
  name: string;
  /** The preset it was written with, for showing the plan. */
  preset: string | undefined;
  /** The file left `audiences` out: the registry's own audience was filled in. */
  defaultAudiences?: boolean | undefined;
}

/** A federated credential on the server (the API's FederatedCredentialView fits). */
export interface ObservedFederatedCredential {
  name: string;
  issuer: string;
  audiences: readonly string[];
  subject: string;
  conditions: readonly ClaimCondition[];
}

export interface DesiredState {
  prune: boolean;
  principals: DesiredPrincipal[];
  /** Undefined: not managed by the file. */
  anonymousPull: string[] | undefined;
  /** The `cache:` section's rules (planned by desired-cache.ts); undefined: not managed by the file. */
  cacheRules?: CacheRuleInput[] | undefined;
  /** Lifecycle policies by kind (`lifecycle-state.ts`); absent: not managed by the file. */
  lifecycle?: DesiredLifecycle;
}

/** What the planner needs to know of a principal on the server (the API's PrincipalView fits). */
export interface ObservedPrincipal {
  kind: string;
  name: string;
  description: string | null;
  disabled: boolean;
  /** ISO 8601, or null when it never expires. */
  expiresAt: string | null;
  grants: readonly { pattern: string; permission: string }[];
  /** Absent: none. */
  federatedCredentials?: readonly ObservedFederatedCredential[] | undefined;
}

export interface ObservedState {
  principals: readonly ObservedPrincipal[];
  anonymousPull: readonly string[];
}

interface Target {
  kind: string;
  name: string;
}

export type Change =
  | { op: 'create'; principal: DesiredPrincipal }
  | ({ op: 'grants'; add: Grant[]; remove: Grant[]; grants: Grant[] } & Target)
  | ({ op: 'disable' } & Target)
  | ({ op: 'enable' } & Target)
  | ({ op: 'describe'; from: string | null; to: string } & Target)
  | ({ op: 'expire'; from: number | null; to: number | null } & Target)
  | ({ op: 'delete' } & Target)
  | { op: 'anonymous-pull'; add: string[]; remove: string[]; patterns: string[] }
  /** Adds a federated credential, or replaces the one with its name (`from`: what it trusted). */
  | ({ op: 'federated-put'; credential: DesiredFederatedCredential; from: ObservedFederatedCredential | undefined } & Target)
  | ({ op: 'federated-remove'; credential: string } & Target);

export interface Plan {
  /** In the order to apply: creates, updates, deletes, settings. */
  changes: Change[];
  /** Things deliberately left alone, worth telling the user. */
  notes: string[];
}

export class DesiredStateError extends Error {
  override name = 'DesiredStateError';
}

// ---------------------------------------------------------------------------------------------
// The file

const pattern = z.string().refine(isValidPattern, (p) => ({ message: `invalid repository pattern ${JSON.stringify(p)}` }));
const permission = z.string().refine(isPermission, (p) => ({
  message: `unknown permission ${JSON.stringify(p)} (roles: pull, push, delete, owner; actions: content/read, content/write, content/delete, metadata/read, metadata/write)`,
}));

/** Either a map `pattern: permission | [permissions]` (a scope map) or a list of {pattern, permission}. */
const grantsInput = z
  .union([
    z.array(z.object({ pattern, permission }).strict()),
    z.record(z.string(), z.union([permission, z.array(permission).min(1)])).superRefine((map, ctx) => {
      for (const key of Object.keys(map)) {
        if (!isValidPattern(key)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: `invalid repository pattern ${JSON.stringify(key)}` });
      }
    }),
  ])
  .optional();

const timestampInput = z.union([
  z.null(),
  z.number().int().nonnegative().max(8.64e15),
  z.string().transform((text, ctx) => {
    const ms = /^\d{4}-\d\d-\d\d(?:[T ][0-9:.]+(?:Z|[+-]\d\d:?\d\d)?)?$/.test(text) ? Date.parse(text) : Number.NaN;
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected an ISO 8601 date or date-time, got ${JSON.stringify(text)}` });
      return z.NEVER;
    }
    return ms;
  }),
]);

/** The same trust, whatever order audiences and conditions are listed in. */
function sameTrust(a: ObservedFederatedCredential, b: ObservedFederatedCredential): boolean {
  const audiences = (x: ObservedFederatedCredential) => JSON.stringify([...new Set(x.audiences)].sort());
  const conditions = (x: ObservedFederatedCredential) => JSON.stringify(x.conditions.map((c) => JSON.stringify(canonicalCondition(c))).sort());
  return a.issuer === b.issuer && a.subject === b.subject && audiences(a) === audiences(b) && conditions(a) === conditions(b);
}

const principalInput = z
  .object({
    name: z.string().regex(principalNamePattern, principalNameRule),
    description: z.string().max(1000).optional(),
    disabled: z.boolean().optional(),
    expiresAt: timestampInput.optional(),
    grants: grantsInput,
    /** Service principals only (checked after parsing, to say so). */
    federatedCredentials: z.array(federatedCredentialInput).max(20).optional(),
  })
  .strict();

const fileSchema = z
  .object({
    prune: z.boolean().optional(),
    settings: z
      .object({ anonymousPull: z.array(pattern).optional() })
      .strict()
      .optional(),
    users: z.array(principalInput).optional(),
    services: z.array(principalInput).optional(),
    tokens: z.array(principalInput).optional(),
    cache: cacheFileSection.optional(),
    /** Checked by `parseLifecycle` (the API's own schemas), so its errors name the rule. */
    lifecycle: z.unknown().optional(),
  })
  .strict();

/**
 * Parses and validates a berth.yaml; errors name the file and the path of the bad value. Presets
 * without `audiences` get `audience`, the registry's own (its challenge advertises it).
 */
export function parseDesiredState(text: string, source: string, audience: string): DesiredState {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` (line ${err.linePos[0].line})` : '';
    throw new DesiredStateError(`${source}${where}: not valid YAML: ${(err as Error).message.split('\n')[0] ?? ''}`);
  }
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues.map(specificIssue)[0];
    const path = issue?.path.join('.') ?? '';
    throw new DesiredStateError(`${source}: ${path ? `${path}: ` : ''}${issue?.message ?? 'invalid'}`);
  }
  const file = parsed.data;
  const principals: DesiredPrincipal[] = [];
  const seen = new Set<string>();
  const sections: Array<[DeclaredKind, z.output<typeof principalInput>[] | undefined]> = [
    ['user', file.users],
    ['service', file.services],
    ['token', file.tokens],
  ];
  for (const [kind, entries] of sections) {
    for (const [index, entry] of (entries ?? []).entries()) {
      if (seen.has(entry.name))
        throw new DesiredStateError(`${source}: the name ${entry.name} is declared twice (names are unique across users, services and tokens)`);
      seen.add(entry.name);
      const where = `${source}: ${kind}s.${index}.federatedCredentials`;
      if (entry.federatedCredentials !== undefined && kind !== 'service') {
        throw new DesiredStateError(`${where}: only service principals may have federated credentials (declare ${entry.name} under services)`);
      }
      principals.push({
        kind,
        name: entry.name,
        description: entry.description,
        disabled: entry.disabled ?? false,
        expiresAt: entry.expiresAt,
        grants: normaliseGrants(toGrants(entry.grants)),
        federatedCredentials: desiredFederatedCredentials(entry.federatedCredentials ?? [], where, audience),
      });
    }
  }
  const anonymousPull = file.settings?.anonymousPull;
  let lifecycle: DesiredLifecycle | undefined;
  try {
    lifecycle = file.lifecycle === undefined ? undefined : parseLifecycle(file.lifecycle, `${source}: lifecycle`);
  } catch (err) {
    if (err instanceof LifecycleStateError) throw new DesiredStateError(err.message);
    throw err;
  }
  return {
    prune: file.prune ?? false,
    principals,
    anonymousPull: anonymousPull === undefined ? undefined : [...new Set(anonymousPull)].sort(),
    ...(file.cache !== undefined ? { cacheRules: file.cache.rules } : {}),
    ...(lifecycle !== undefined ? { lifecycle } : {}),
  };
}

function desiredFederatedCredentials(entries: readonly FederatedCredentialInput[], where: string, audience: string): DesiredFederatedCredential[] {
  const names = new Set<string>();
  return entries.map((entry, i) => {
    if (names.has(entry.name)) throw new DesiredStateError(`${where}.${i}.name: ${entry.name} is declared twice for this principal`);
    names.add(entry.name);
    try {
      const defaultAudiences = entry.preset !== undefined && entry.audiences === undefined;
      return { name: entry.name, preset: entry.preset, ...resolveFederatedCredential(entry, audience), ...(defaultAudiences ? { defaultAudiences } : {}) };
    } catch (err) {
      if (err instanceof PresetError) throw new DesiredStateError(`${where}.${i}: ${err.message}`);
      throw err;
    }
  });
}

function toGrants(input: z.output<typeof grantsInput>): Grant[] {
  if (input === undefined) return [];
  if (Array.isArray(input)) return input.map((g) => ({ pattern: g.pattern, permission: g.permission as Permission }));
  return Object.entries(input).flatMap(([key, value]) => (Array.isArray(value) ? value : [value]).map((p) => ({ pattern: key, permission: p as Permission })));
}

const grantKey = (g: { pattern: string; permission: string }) => `${g.pattern}\u0000${g.permission}`;

/** Sorted by pattern then permission, duplicates removed: the canonical form plans compare. */
export function normaliseGrants<G extends { pattern: string; permission: string }>(grants: readonly G[]): G[] {
  const unique = new Map(grants.map((g) => [grantKey(g), g]));
  return [...unique.values()].sort((a, b) => (a.pattern === b.pattern ? cmp(a.permission, b.permission) : cmp(a.pattern, b.pattern)));
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

// ---------------------------------------------------------------------------------------------
// The plan

/**
 * The changes that make `observed` match `desired`. `actingAs` is the principal applying the plan:
 * it is never pruned, and a plan that would disable it or take away its owner grant is refused
 * (the server refuses those too; refusing here keeps a run from stopping half-way).
 * Throws DesiredStateError when the file cannot be applied (a name exists with another kind).
 */
export function plan(desired: DesiredState, observed: ObservedState, options: { actingAs?: string | undefined } = {}): Plan {
  const byName = new Map(observed.principals.map((p) => [p.name, p]));
  const creates: Change[] = [];
  const updates: Change[] = [];
  const deletes: Change[] = [];
  const notes: string[] = [];
  const problems: string[] = [];

  for (const want of desired.principals) {
    const have = byName.get(want.name);
    if (!have) {
      creates.push({ op: 'create', principal: want });
      updates.push(...planFederated(want, []));
      continue;
    }
    const target = { kind: want.kind, name: want.name };
    if (have.kind !== want.kind) {
      problems.push(
        `${want.name} exists as ${article(have.kind)} ${have.kind} but the file declares ${article(want.kind)} ${want.kind}: rename it in the file, or delete it first`,
      );
      continue;
    }
    const current = normaliseGrants(have.grants);
    const wanted = new Set(want.grants.map(grantKey));
    const existing = new Set(current.map(grantKey));
    const add = want.grants.filter((g) => !existing.has(grantKey(g)));
    const remove = current.filter((g) => !wanted.has(grantKey(g))).map((g) => ({ pattern: g.pattern, permission: g.permission as Permission }));
    if (want.name === options.actingAs && !isOwner(want.grants) && isOwner(current.filter((g): g is Grant => isPermission(g.permission)))) {
      problems.push(`the file takes the owner grant away from ${want.name}, the principal applying it: apply it as another owner`);
    }
    if (want.disabled && !have.disabled && want.name === options.actingAs) {
      problems.push(`the file disables ${want.name}, the principal applying it: apply it as another owner`);
    }
    if (add.length > 0 || remove.length > 0) updates.push({ op: 'grants', ...target, add, remove, grants: want.grants });
    if (want.disabled !== have.disabled) updates.push({ op: want.disabled ? 'disable' : 'enable', ...target });
    if (want.description !== undefined && want.description !== (have.description ?? '')) {
      updates.push({ op: 'describe', ...target, from: have.description, to: want.description });
    }
    const haveExpiry = have.expiresAt === null ? null : Date.parse(have.expiresAt);
    if (want.expiresAt !== undefined && want.expiresAt !== haveExpiry) updates.push({ op: 'expire', ...target, from: haveExpiry, to: want.expiresAt });
    updates.push(...planFederated(want, have.federatedCredentials ?? []));
  }

  if (desired.prune) {
    const declared = new Set(desired.principals.map((p) => p.name));
    for (const have of observed.principals) {
      if (declared.has(have.name)) continue;
      if (have.kind === 'admin') notes.push(`kept the admin user ${have.name}: configuration (auth.adminUser) manages it`);
      else if (have.name === options.actingAs) notes.push(`kept ${have.kind} ${have.name}: it is the principal applying this file`);
      else deletes.push({ op: 'delete', kind: have.kind, name: have.name });
    }
  }

  const settings: Change[] = [];
  if (desired.anonymousPull !== undefined) {
    const have = new Set(observed.anonymousPull);
    const want = new Set(desired.anonymousPull);
    const add = desired.anonymousPull.filter((p) => !have.has(p));
    const remove = [...have].filter((p) => !want.has(p)).sort();
    if (add.length > 0 || remove.length > 0) settings.push({ op: 'anonymous-pull', add, remove, patterns: desired.anonymousPull });
  }

  if (problems.length > 0) throw new DesiredStateError(problems.join('; '));
  return { changes: [...creates, ...updates, ...deletes, ...settings], notes };
}

/** Adds the credentials the file has and the server lacks, replaces changed ones, removes the rest. */
function planFederated(want: DesiredPrincipal, have: readonly ObservedFederatedCredential[]): Change[] {
  const target = { kind: want.kind, name: want.name };
  const existing = new Map(have.map((c) => [c.name, c]));
  const declared = new Set(want.federatedCredentials.map((c) => c.name));
  const changes: Change[] = [];
  for (const wanted of want.federatedCredentials) {
    const from = existing.get(wanted.name);
    // Migration: a credential made when presets defaulted to the legacy audience keeps it (the
    // server also accepts this registry's own audience for it); naming `audiences` moves it.
    const keepsLegacy = wanted.defaultAudiences === true && from !== undefined && from.audiences.length === 1 && from.audiences[0] === legacyAudience;
    const credential = keepsLegacy ? { ...wanted, audiences: [legacyAudience] } : wanted;
    if (!from || !sameTrust(from, credential)) changes.push({ op: 'federated-put', ...target, credential, from });
  }
  for (const c of [...have].sort((a, b) => cmp(a.name, b.name))) {
    if (!declared.has(c.name)) changes.push({ op: 'federated-remove', ...target, credential: c.name });
  }
  return changes;
}

function article(kind: string): string {
  return kind === 'admin' ? 'an' : 'a';
}

// ---------------------------------------------------------------------------------------------
// Showing a plan

const showGrant = (g: { pattern: string; permission: string }) => `${g.permission} on ${g.pattern}`;
const showTime = (ms: number | null) => (ms === null ? 'never' : new Date(ms).toISOString());

/** One line per change, in the `+ create` / `~ update` / `- delete` style of a diff. */
export function formatChange(change: Change): string {
  switch (change.op) {
    case 'create': {
      const p = change.principal;
      const extras = [p.disabled ? 'disabled' : undefined, typeof p.expiresAt === 'number' ? `expires ${showTime(p.expiresAt)}` : undefined].filter(Boolean);
      const grants = p.grants.length > 0 ? `: ${p.grants.map(showGrant).join(', ')}` : '';
      return `+ create ${p.kind} ${p.name}${grants}${extras.length > 0 ? ` (${extras.join(', ')})` : ''}`;
    }
    case 'grants':
      return `~ grants ${change.kind} ${change.name}: ${[...change.add.map((g) => `+ ${showGrant(g)}`), ...change.remove.map((g) => `- ${showGrant(g)}`)].join(', ')}`;
    case 'disable':
    case 'enable':
      return `~ ${change.op} ${change.kind} ${change.name}`;
    case 'describe':
      return `~ description ${change.kind} ${change.name}: ${JSON.stringify(change.from ?? '')} -> ${JSON.stringify(change.to)}`;
    case 'expire':
      return `~ expiry ${change.kind} ${change.name}: ${showTime(change.from)} -> ${showTime(change.to)}`;
    case 'delete':
      return `- delete ${change.kind} ${change.name}`;
    case 'anonymous-pull':
      return `~ anonymous pull: ${[...change.add.map((p) => `+ ${p}`), ...change.remove.map((p) => `- ${p}`)].join(', ')}`;
    case 'federated-put': {
      const c = change.credential;
      const what = `federated credential ${c.name} of ${change.kind} ${change.name}`;
      if (!change.from) return `+ ${what}: ${showTrust(c)}`;
      const from = change.from;
      const diffs = [
        from.issuer !== c.issuer ? `issuer ${from.issuer} -> ${c.issuer}` : undefined,
        from.subject !== c.subject ? `subject ${from.subject} -> ${c.subject}` : undefined,
        showList(from.audiences) !== showList(c.audiences) ? `audiences ${showList(from.audiences)} -> ${showList(c.audiences)}` : undefined,
        showConditions(from.conditions) !== showConditions(c.conditions)
          ? `conditions ${showConditions(from.conditions)} -> ${showConditions(c.conditions)}`
          : undefined,
      ].filter(Boolean);
      return `~ ${what}: ${diffs.join(', ') || 'replaced'} (revokes the refresh tokens it bought)`;
    }
    case 'federated-remove':
      return `- federated credential ${change.credential} of ${change.kind} ${change.name}`;
  }
}
