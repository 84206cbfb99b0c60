/**
 * The wire contract of lifecycle policies (`/api/v1/lifecycle…`, `berth lifecycle`, the `lifecycle:`
 * section of `berth apply` files): retention rules, tag immutability rules and storage quotas, as
 * people write them. One input shape for a file entry and an API body, validated by the same zod
 * schemas (the server adds what needs the domain: a tag filter's regular expression is compiled by
 * the sync filters' engine, `lifecycle/selectors.ts`). Durations are written `90s`, `15m`, `12h`,
 * `30d`, `2w` or as milliseconds; sizes `500MB`, `10GiB` or as bytes. Views carry them as numbers
 * (milliseconds, bytes), which is also the canonical form `berth apply` compares.
 */
import { z } from 'zod';
import { isRepositoryPattern } from '../shared/glob.js';
import { claimConditionInput } from './federated-credentials.js';
import type { ClaimCondition } from './principals.js';

export const policyKinds = ['retention', 'immutability', 'quotas'] as const;
export type PolicyKind = (typeof policyKinds)[number];

export function isPolicyKind(value: string): value is PolicyKind {
  return (policyKinds as readonly string[]).includes(value);
}

/** A policy's name: unique within its kind; what API paths and `berth apply` match on. */
export const policyNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const policyNameRule = 'a policy name is 1-64 lower-case letters, digits, ., _ or -, starting with a letter or digit';

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
/** Longest duration accepted anywhere (about 100 years): keeps sums of times far from overflow. */
const maxDurationMs = 100 * 365 * 86_400_000;

/** `30d` → milliseconds; undefined if `text` is not a duration. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d{1,12})(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Number(match[1]) * (units[match[2] as string] as number);
  return ms <= maxDurationMs ? ms : undefined;
}

/** Milliseconds as the largest whole unit (`30d`, `90m`, `1500ms`). */
export function formatDuration(ms: number): string {
  for (const unit of ['w', 'd', 'h', 'm', 's'] as const) {
    const size = units[unit] as number;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const sizeUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** `10GiB` → bytes (KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB of 1024); undefined if not a size. */
export function parseSize(text: string): number | undefined {
  const match = /^(\d{1,15}(?:\.\d{1,6})?)\s*([a-zA-Z]{0,3})$/.exec(text.trim());
  if (!match) return undefined;
  const factor = sizeUnits[(match[2] || 'b').toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Math.round(Number(match[1]) * factor);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Bytes for people: `1.5 GiB`, `300 B`. */
export function formatSize(bytes: number): string {
  const names = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < names.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${names[unit] ?? ''}`;
}

/** A duration: a string such as `30d` or a number of milliseconds; yields milliseconds. */
export const durationInput = z.union([
  z.number().int().nonnegative().max(maxDurationMs),
  z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a duration such as 90m, 12h, 30d or 2w, got ${JSON.stringify(text.slice(0, 40))}` });
      return z.NEVER;
    }
    return ms;
  }),
]);

/** A size: a string such as `10GiB` or a number of bytes; yields bytes. */
export const sizeInput = z.union([
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  z.string().transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `expected a size such as 500MB or 10GiB, got ${JSON.stringify(text.slice(0, 40))}` });
      return z.NEVER;
    }
    return bytes;
  }),
]);

export const policyName = z.string().regex(policyNamePattern, policyNameRule);

const repositoryPattern = z.string().refine(isRepositoryPattern, (p) => ({
  message: `${JSON.stringify(p.slice(0, 100))} is not a repository glob (the grants' grammar: * within a component, ** across)`,
}));

/** Tag filters in the sync filters' forms (glob, `regex:`, `semver:`); their syntax is checked by the server. */
const tagFilter = z.string().min(1, 'a tag filter must not be empty').max(256, 'a tag filter is at most 256 characters');

/** Include/exclude tag filters: a tag is selected when it matches an include (or there are none) and no exclude. */
export const tagSelectorInput = z
  .object({
    include: z.array(tagFilter).max(10_000).default([]),
    exclude: z.array(tagFilter).max(10_000).default([]),
  })
  .strict();

// ---------------------------------------------------------------------------------------------
// Retention

export const retentionModes = ['dry-run', 'enforce'] as const;
export type RetentionMode = (typeof retentionModes)[number];

export const retentionInput = z
  .object({
    name: policyName,
    enabled: z.boolean().default(true),
    repositories: z.array(repositoryPattern).min(1, 'name at least one repository glob').max(1000),
    tags: tagSelectorInput.default({}).describe('Which tags the rule governs; tags it does not select are never touched by it.'),
    untagged: z.boolean().default(false).describe('Whether untagged images (and referrers whose subject is gone) are candidates too.'),
    conditions: z
      .object({
        keepNewest: z.number().int().min(0).max(1_000_000).optional().describe('Holds for an image that is not among the newest N candidates by push time.'),
        olderThan: durationInput.optional().describe('Holds for an image pushed longer ago than this.'),
        notPulledFor: durationInput.optional().describe('Holds for an image not pulled for this long (never pulled: since its push).'),
      })
      .strict()
      .refine((c) => Object.values(c).some((v) => v !== undefined), 'name at least one condition: keepNewest, olderThan or notPulledFor'),
    match: z.enum(['all', 'any']).optional().describe('How conditions combine; required when there is more than one.'),
    minimumAge: durationInput.optional().describe('Never delete what was pushed more recently than this (at least lifecycle.retention.minimumAgeMs).'),
    allowEmpty: z.boolean().default(false).describe('Allow deleting every image a repository has; by default its newest candidate is kept.'),
    mode: z.enum(retentionModes).default('dry-run').describe('dry-run runs report what they would delete; enforce runs delete.'),
    schedule: z
      .object({ every: durationInput.refine((ms) => ms >= 60_000, 'a schedule runs at most every minute') })
      .strict()
      .nullable()
      .default(null)
      .describe('When runs start by themselves; null: only on request.'),
  })
  .strict()
  .superRefine((rule, ctx) => {
    const count = Object.values(rule.conditions).filter((v) => v !== undefined).length;
    if (count > 1 && rule.match === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['match'], message: 'with more than one condition, say how they combine: match: all or match: any' });
    }
  });

export type RetentionInput = z.input<typeof retentionInput>;
export type RetentionRule = z.output<typeof retentionInput>;

// ---------------------------------------------------------------------------------------------
// Immutability

/** Who may create or move tags a rule selects: principals by name, and/or conditions on the push's OIDC provenance claims. */
export const writerInput = z
  .object({
    principals: z.array(z.string().min(1).max(128)).max(100).optional(),
    conditions: z.array(claimConditionInput).max(20).default([]),
  })
  .strict()
  .refine((w) => (w.principals?.length ?? 0) > 0 || w.conditions.length > 0, 'a writer names principals, conditions, or both');

export const immutabilityInput = z
  .object({
    name: policyName,
    enabled: z.boolean().default(true),
    repositories: z.array(repositoryPattern).min(1, 'name at least one repository glob').max(1000),
    tags: tagSelectorInput.default({}),
    immutable: z.boolean().default(true).describe('Write-once: a selected tag, once it exists, never points at another digest.'),
    writers: z.array(writerInput).max(100).optional().describe('Who may create (or, when not immutable, move) the selected tags; absent: anyone with push.'),
  })
  .strict()
  .refine((rule) => rule.immutable || (rule.writers?.length ?? 0) > 0, 'a rule that is not immutable must name writers (else it does nothing)');

export type ImmutabilityInput = z.input<typeof immutabilityInput>;
export type ImmutabilityRule = z.output<typeof immutabilityInput>;

// ---------------------------------------------------------------------------------------------
// Quotas

export const quotaInput = z
  .object({
    name: policyName,
    enabled: z.boolean().default(true),
    repositories: z.array(repositoryPattern).min(1, 'name at least one repository glob').max(1000),
    limit: sizeInput.optional().describe('Most bytes the matching repositories may reference together (the sum of their logical sizes).'),
    warnAt: z.number().min(0.01).max(1).default(0.8).describe('Fraction of the limit at which a quota_warning event is sent.'),
    perPrincipal: z
      .object({
        bytesPerHour: sizeInput.optional().describe('Blob bytes one principal may upload per hour into the matching repositories.'),
        pushesPerHour: z.number().int().min(1).max(1_000_000).optional().describe('Manifest pushes one principal may make per hour there.'),
      })
      .strict()
      .optional()
      .describe('Push rate limits per principal (per replica), so a runaway job cannot fill the disk.'),
  })
  .strict()
  .refine(
    (q) => q.limit !== undefined || q.perPrincipal?.bytesPerHour !== undefined || q.perPrincipal?.pushesPerHour !== undefined,
    'a quota sets a limit, a rate limit, or both',
  );

export type QuotaInput = z.input<typeof quotaInput>;
export type QuotaRule = z.output<typeof quotaInput>;

/** The input schema of each kind. */
export const policyInputs = { retention: retentionInput, immutability: immutabilityInput, quotas: quotaInput } as const;

export type PolicySpec = { kind: 'retention'; rule: RetentionRule } | { kind: 'immutability'; rule: ImmutabilityRule } | { kind: 'quotas'; rule: QuotaRule };

// ---------------------------------------------------------------------------------------------
// Views

/** A stored policy: its rule in canonical form (durations in ms, sizes in bytes) and when it changed. */
export interface PolicyView<Rule = RetentionRule | ImmutabilityRule | QuotaRule> {
  kind: PolicyKind;
  name: string;
  rule: Rule;
  createdAt: string;
  updatedAt: string;
  /** Retention with a schedule: when the next run starts. */
  nextRunAt?: string | null;
}

/** GET /lifecycle/policies. */
export interface PoliciesView {
  retention: PolicyView<RetentionRule>[];
  immutability: PolicyView<ImmutabilityRule>[];
  quotas: PolicyView<QuotaRule>[];
}

/** PUT /lifecycle/{kind}/{name} → 200/201. */
export interface PolicyChangeView {
  policy: PolicyView;
  created: boolean;
}

/** One thing a retention rule deletes (or would), and why. */
export interface RetentionActionView {
  repository: string;
  /** `delete`: the manifest and every tag on it; `untag`: only `tags` (the image keeps its others). */
  action: 'delete' | 'untag';
  digest: string;
  tags: string[];
  /** Why: the conditions that hold, or for a dependent, what it goes with. */
  reason: string;
  /** Runs only: what happened (`would-delete` in dry-run runs). */
  outcome?: 'deleted' | 'would-delete' | 'skipped';
  /** Runs only: why a planned deletion was skipped (the image changed since it was planned). */
  detail?: string;
}

/** A candidate the conditions expire but a safety rule keeps. */
export interface RetentionKeptView {
  repository: string;
  digest: string;
  tags: string[];
  reason: string;
}

/** POST …/preview → 200. */
export interface RetentionPreviewView {
  rule: string;
  /** The time the plan was made for (conditions on ages are relative to it). */
  at: string;
  repositories: number;
  candidates: number;
  actions: RetentionActionView[];
  protected: RetentionKeptView[];
  /** True when `limit` cut the listing; `next` continues after that repository. */
  truncated: boolean;
  next: string | null;
}

export type RunStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface RunSummaryView {
  repositories: number;
  candidates: number;
  deletedManifests: number;
  untaggedTags: number;
  skipped: number;
  /** The repository the run finished last (it resumes after it). */
  cursor: string | null;
}

export interface RunView {
  id: string;
  policy: string;
  dryRun: boolean;
  trigger: 'schedule' | 'request';
  status: RunStatus;
  requestedBy: string | null;
  progress: RunSummaryView;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** GET /lifecycle/runs/{id}. */
export interface RunDetailView {
  run: RunView;
  actions: RetentionActionView[];
  /**
   * Where the next page starts (`after`): the last action's sequence number (or the `after` asked
   * for, when no action followed it). A full page means more may follow; a running run adds more.
   */
  next: number | null;
}

export interface RepositoryUsageView {
  repository: string;
  /** Bytes the repository references: its manifests and the distinct blobs they reference. */
  logicalBytes: number;
  /** Of those, bytes no other repository references: what deleting it would free. */
  exclusiveBytes: number;
  manifests: number;
  blobs: number;
  computedAt: string;
}

export interface QuotaUsageView {
  name: string;
  repositories: string[];
  limitBytes: number | null;
  /** The sum of the matching repositories' logical sizes, with pushes accepted since the last refresh. */
  usageBytes: number | null;
  state: 'ok' | 'warning' | 'exceeded' | 'unknown';
  computedAt: string | null;
}

/** GET /lifecycle/usage. */
export interface UsageView {
  /** The glob the listing was narrowed to (`**`: every repository). */
  pattern: string;
  repositories: RepositoryUsageView[];
  /**
   * Of the repositories the pattern matches: logical is the sum; exclusive is what deleting all of
   * them would free (null when they are too many to compute on request).
   */
  total: { repositories: number; logicalBytes: number; exclusiveBytes: number | null };
  quotas: QuotaUsageView[];
  next: string | null;
}

/** One writer condition, as rules and messages show it. */
export function showCondition(c: ClaimCondition): string {
  if (c.equals !== undefined) return `${c.claim}=${c.equals}`;
  if (c.glob !== undefined) return `${c.claim} matches ${c.glob}`;
  return `${c.claim} in [${(c.oneOf ?? []).join(', ')}]`;
}
