/**
 * A sync rule: which images of a source registry are copied into this one, and when.
 *
 * The API body (`ruleInput`), the stored record (`SyncRule`) and the rules that relate them live
 * here, so the management API, the worker and the CLI agree on one shape. Validation that needs
 * the network (the egress policy on the source URL) happens in the handler.
 */
import { z } from 'zod';
import { upstreamCredentialsInput, type UpstreamCredentials } from '../api/source-credentials.js';
import type { NewSyncRule, SyncRuleRow, SyncRuleState } from '../metadata/sync-store.js';
import { isValidRepositoryName } from '../oci/names.js';
import { repositoryPatternProblem, tagFilterProblem } from './filters.js';

/**
 * How Berth logs in to the source. `basic` takes the password inline (stored in the metadata
 * database, like every rule field), or better a reference read when the source is contacted:
 * `passwordFile` (a path on the server) or `passwordEnv` (a variable of the server's process).
 * `oidc` sends a workload token read from `tokenFile` (for example a projected Kubernetes
 * service-account token) to a Berth source whose federated credential accepts it.
 */
export type SourceCredentials = UpstreamCredentials;

export interface SyncRuleSpec {
  source: { url: string; credentials: SourceCredentials };
  /** Globs on the source's repository names (the allow-list webhooks are checked against). */
  repositories: string[];
  tags: { include: string[]; exclude: string[] };
  /** Prepended to the source repository name: `vendor/` + `tripinsights/api`. Empty or ending in `/`. */
  destinationPrefix: string;
  triggers: {
    /** Accept notifications at `/api/v1/sync/rules/{name}/webhook` (the secret is kept apart from the spec). */
    webhook: boolean;
    /** Reconcile this often; null: only webhooks (plus `sync.reconcileIntervalMs`) and on-demand runs. */
    pollIntervalMs: number | null;
    /** Allow `POST …/run`. */
    onDemand: boolean;
  };
  /** Per-source request rate and parallelism; unset fields take `sync.defaultLimits`. */
  limits: { requestsPerSecond?: number; concurrency?: number };
  /** Also copy the referrers (signatures, SBOMs) of each copied manifest. */
  includeReferrers: boolean;
}

export interface SyncRule extends SyncRuleSpec {
  id: string;
  name: string;
  enabled: boolean;
  /** The shared secret webhook senders sign with (or send as a bearer token); null without the webhook trigger. */
  webhookSecret: string | null;
  createdAt: number;
  updatedAt: number;
}

/** A rule with the state of its runs: what the service, the worker and the API work with. */
export interface SyncRuleRecord extends SyncRule {
  state: SyncRuleState;
}

/** The stored form of a rule (its spec as JSON: exactly the spec's fields, nothing else of the record). */
export function ruleRow(rule: SyncRule): NewSyncRule {
  return {
    id: rule.id,
    name: rule.name,
    spec: specJson(rule),
    enabled: rule.enabled,
    webhookSecret: rule.webhookSecret,
    createdAt: rule.createdAt,
    updatedAt: rule.updatedAt,
  };
}

export function specJson(rule: SyncRuleSpec): string {
  const spec: SyncRuleSpec = {
    source: rule.source,
    repositories: rule.repositories,
    tags: rule.tags,
    destinationPrefix: rule.destinationPrefix,
    triggers: rule.triggers,
    limits: rule.limits,
    includeReferrers: rule.includeReferrers,
  };
  return JSON.stringify(spec);
}

/** A stored rule as a record (the spec as written by `specJson`). */
export function ruleRecord(row: SyncRuleRow): SyncRuleRecord {
  const spec = JSON.parse(row.spec) as SyncRuleSpec;
  return {
    ...spec,
    id: row.id,
    name: row.name,
    enabled: row.enabled,
    webhookSecret: row.webhookSecret,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    state: row.state,
  };
}

export const ruleName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'a rule name is 1-63 lower-case letters, digits, ., _ or -, starting with a letter or digit');

/** The source's credentials: the shape every rule that reads from another registry shares (`api/source-credentials.ts`). */
const credentialsInput = upstreamCredentialsInput;

const sourceUrl = z
  .string()
  .max(2048)
  .refine((text) => {
    try {
      const url = new URL(text);
      return (url.protocol === 'https:' || url.protocol === 'http:') && url.username === '' && url.password === '' && url.search === '' && url.hash === '';
    } catch {
      return false;
    }
  }, 'the source is an http(s) URL of a registry, without credentials, query or fragment (e.g. https://vendor.example.com)');

const repositoryPattern = z.string().superRefine((pattern, ctx) => {
  const problem = repositoryPatternProblem(pattern);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

const tagFilter = z.string().superRefine((filter, ctx) => {
  const problem = tagFilterProblem(filter);
  if (problem) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
});

const destinationPrefix = z
  .string()
  .max(200)
  .transform((prefix) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`))
  .refine(
    (prefix) => prefix === '' || isValidRepositoryName(prefix.slice(0, -1)),
    'the destination prefix is a repository path such as vendor or mirrors/acme',
  );

/**
 * `webhook`: `{}` turns the trigger on (Berth generates the secret and shows it once), `{secret}`
 * sets a secret the sender already has, `{rotateSecret: true}` replaces it; `null` turns it off.
 */
const webhookInput = z
  .object({
    secret: z.string().min(16, 'a webhook secret is at least 16 characters').max(256).optional(),
    rotateSecret: z.literal(true).optional(),
  })
  .strict()
  .refine((w) => !(w.secret !== undefined && w.rotateSecret), 'give either secret or rotateSecret, not both');

const triggersInput = z
  .object({
    webhook: webhookInput.nullable().optional(),
    pollIntervalMs: z
      .number()
      .int()
      .positive()
      .max(30 * 24 * 3600 * 1000)
      .nullable()
      .optional(),
    onDemand: z.boolean().optional(),
  })
  .strict();

const limitsInput = z
  .object({
    requestsPerSecond: z.number().positive().max(10_000).optional(),
    concurrency: z.number().int().positive().max(64).optional(),
  })
  .strict();

/** POST /sync/rules. */
export const ruleInput = z
  .object({
    name: ruleName,
    source: z.object({ url: sourceUrl, credentials: credentialsInput.default({ kind: 'anonymous' }) }).strict(),
    repositories: z.array(repositoryPattern).min(1, 'list at least one repository glob').max(100),
    tags: z
      .object({ include: z.array(tagFilter).max(100).default([]), exclude: z.array(tagFilter).max(100).default([]) })
      .strict()
      .default({}),
    destinationPrefix: destinationPrefix.default(''),
    triggers: triggersInput.default({}),
    limits: limitsInput.default({}),
    includeReferrers: z.boolean().default(true),
    enabled: z.boolean().default(true),
  })
  .strict();

/** PATCH /sync/rules/{name}: every field optional; objects are merged one level deep, lists replaced. */
export const ruleUpdate = z
  .object({
    source: z.object({ url: sourceUrl.optional(), credentials: credentialsInput.optional() }).strict().optional(),
    repositories: z.array(repositoryPattern).min(1, 'list at least one repository glob').max(100).optional(),
    tags: z
      .object({ include: z.array(tagFilter).max(100).optional(), exclude: z.array(tagFilter).max(100).optional() })
      .strict()
      .optional(),
    destinationPrefix: destinationPrefix.optional(),
    triggers: triggersInput.optional(),
    limits: limitsInput.optional(),
    includeReferrers: z.boolean().optional(),
    enabled: z.boolean().optional(),
  })
  .strict();

export type RuleInput = z.output<typeof ruleInput>;
export type RuleUpdate = z.output<typeof ruleUpdate>;
type WebhookInput = z.output<typeof webhookInput>;

/** What a create or update does to the webhook secret: keep it, set it (and maybe show it), or drop it. */
export type SecretChange = { kind: 'keep' } | { kind: 'drop' } | { kind: 'set'; secret: string; generated: boolean };

/** The spec of a new rule and what to do with its webhook secret. */
export function specFromInput(input: RuleInput, generateSecret: () => string): { spec: SyncRuleSpec; secret: SecretChange } {
  const webhook = input.triggers.webhook ?? undefined;
  const spec: SyncRuleSpec = {
    source: { url: input.source.url.replace(/\/+$/, ''), credentials: input.source.credentials },
    repositories: input.repositories,
    tags: input.tags,
    destinationPrefix: input.destinationPrefix,
    triggers: { webhook: webhook !== undefined, pollIntervalMs: input.triggers.pollIntervalMs ?? null, onDemand: input.triggers.onDemand ?? true },
    limits: stripUndefined(input.limits),
    includeReferrers: input.includeReferrers,
  };
  return { spec, secret: webhook === undefined ? { kind: 'drop' } : newSecret(webhook, undefined, generateSecret) };
}

/** The rule's spec after a PATCH, and what happens to its webhook secret. */
export function applyUpdate(rule: SyncRule, update: RuleUpdate, generateSecret: () => string): { spec: SyncRuleSpec; secret: SecretChange } {
  const webhook = update.triggers?.webhook;
  const spec: SyncRuleSpec = {
    source: {
      url: (update.source?.url ?? rule.source.url).replace(/\/+$/, ''),
      credentials: update.source?.credentials ?? rule.source.credentials,
    },
    repositories: update.repositories ?? rule.repositories,
    tags: { include: update.tags?.include ?? rule.tags.include, exclude: update.tags?.exclude ?? rule.tags.exclude },
    destinationPrefix: update.destinationPrefix ?? rule.destinationPrefix,
    triggers: {
      webhook: webhook === undefined ? rule.triggers.webhook : webhook !== null,
      pollIntervalMs: update.triggers?.pollIntervalMs === undefined ? rule.triggers.pollIntervalMs : update.triggers.pollIntervalMs,
      onDemand: update.triggers?.onDemand ?? rule.triggers.onDemand,
    },
    limits: update.limits === undefined ? rule.limits : { ...rule.limits, ...stripUndefined(update.limits) },
    includeReferrers: update.includeReferrers ?? rule.includeReferrers,
  };
  let secret: SecretChange;
  if (webhook === null) secret = { kind: 'drop' };
  else if (webhook === undefined) secret = { kind: 'keep' };
  else secret = newSecret(webhook, rule.webhookSecret ?? undefined, generateSecret);
  return { spec, secret };
}

function newSecret(webhook: WebhookInput, existing: string | undefined, generateSecret: () => string): SecretChange {
  if (webhook.secret !== undefined) return { kind: 'set', secret: webhook.secret, generated: false };
  if (existing !== undefined && !webhook.rotateSecret) return { kind: 'keep' };
  return { kind: 'set', secret: generateSecret(), generated: true };
}

/** The local repository a source repository is copied to. */
export function destinationOf(rule: Pick<SyncRuleSpec, 'destinationPrefix'>, sourceRepository: string): string {
  return `${rule.destinationPrefix}${sourceRepository}`;
}

/**
 * How often the rule is reconciled: its own poll interval, else (for webhook rules) the
 * configured safety-net interval, else never (on-demand only). Never below `minPollIntervalMs`.
 */
export function reconcileInterval(
  rule: Pick<SyncRuleSpec, 'triggers'>,
  config: { reconcileIntervalMs: number; minPollIntervalMs: number },
): number | undefined {
  const interval = rule.triggers.pollIntervalMs ?? (rule.triggers.webhook && config.reconcileIntervalMs > 0 ? config.reconcileIntervalMs : undefined);
  return interval === undefined ? undefined : Math.max(interval, config.minPollIntervalMs);
}

function stripUndefined<T extends object>(value: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as { [K in keyof T]: Exclude<T[K], undefined> };
}
