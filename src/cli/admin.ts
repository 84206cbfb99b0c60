/**
 * `berth admin …` and `berth keys rotate`: the management API from a terminal. Tables for people
 * by default, the API's JSON with `--json` for scripts. A secret is printed once, on stdout, with
 * a warning on stderr; it cannot be shown again (rotate it instead).
 */
import { showCondition, showTrust } from '../api/federated-credentials.js';
import { isPermission, isValidPattern, type PrincipalKind } from '../api/principals.js';
import {
  AdminError,
  connectAdmin,
  type ClaimConditionView,
  type ConnectionOptions,
  type FederatedCredentialBody,
  type GrantInput,
  type IssuedSecret,
  type PrincipalView,
} from './admin-client.js';

export interface OutputOptions {
  json?: boolean | undefined;
}

export type CommandOptions = ConnectionOptions & OutputOptions;

const kinds = ['user', 'admin', 'service', 'token'];

// ---------------------------------------------------------------------------------------------
// Principals

export async function principalList(options: CommandOptions & { kind?: string | undefined }): Promise<void> {
  if (options.kind !== undefined && !kinds.includes(options.kind)) throw new AdminError(`--kind must be one of ${kinds.join(', ')}`);
  const client = await connectAdmin(options);
  const { principals } = await client.listPrincipals(options.kind as PrincipalKind | undefined);
  if (options.json) return printJson({ principals });
  if (principals.length === 0) return print('no principals');
  print(
    table([
      ['NAME', 'KIND', 'STATUS', 'EXPIRES', 'GRANTS', 'SECRETS'],
      ...principals.map((p) => [
        p.name,
        p.kind,
        status(p),
        p.expiresAt ?? 'never',
        p.grants.map(showGrant).join(', ') || '-',
        p.secrets.map((s) => s.name).join(', ') || '-',
      ]),
    ]),
  );
}

export async function principalCreate(
  kind: string,
  name: string | undefined,
  options: CommandOptions & { grant?: string[] | undefined; description?: string | undefined; expires?: string | undefined },
): Promise<void> {
  if (kind !== 'user' && kind !== 'service' && kind !== 'token')
    throw new AdminError('the kind to create is user, service or token (the admin user comes from configuration)');
  if (kind !== 'service' && name === undefined) throw new AdminError(`a ${kind} needs a name: berth admin principal create ${kind} NAME`);
  const grants = (options.grant ?? []).map(parseGrant);
  const expiresAt = options.expires === undefined ? undefined : parseExpiry(options.expires);
  const client = await connectAdmin(options);
  const created = await client.createPrincipal({
    kind,
    grants,
    ...(name !== undefined ? { name } : {}),
    ...(options.description !== undefined ? { description: options.description } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  });
  if (options.json) {
    printJson(created);
  } else {
    print(`created ${created.principal.kind} ${created.principal.name} (id ${created.principal.id})`);
    printSecret(created.secret, created.principal);
  }
  warnSecretShownOnce();
}

export async function principalShow(ref: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const principal = await client.getPrincipal(ref);
  if (options.json) return printJson(principal);
  print(describe(principal));
}

export async function principalSetDisabled(ref: string, disabled: boolean, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const principal = await client.updatePrincipal(ref, { disabled });
  if (options.json) return printJson(principal);
  print(`${disabled ? 'disabled' : 'enabled'} ${principal.kind} ${principal.name}${disabled ? '; its refresh tokens are revoked' : ''}`);
}

export async function principalDelete(ref: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  await client.deletePrincipal(ref);
  if (options.json) return printJson({ deleted: ref });
  print(`deleted ${ref}`);
}

/** Shows the grants, or changes them: `--set` (or `--clear`) replaces, `--add`/`--remove` edit. */
export async function principalGrants(
  ref: string,
  options: CommandOptions & { set?: string[] | undefined; add?: string[] | undefined; remove?: string[] | undefined; clear?: boolean | undefined },
): Promise<void> {
  const set = options.set?.map(parseGrant);
  const add = (options.add ?? []).map(parseGrant);
  const remove = (options.remove ?? []).map(parseGrant);
  if (set !== undefined && options.clear) throw new AdminError('use --set or --clear, not both');
  const client = await connectAdmin(options);
  let principal = await client.getPrincipal(ref);
  if (set !== undefined || options.clear || add.length > 0 || remove.length > 0) {
    const key = (g: GrantInput) => `${g.pattern}\u0000${g.permission}`;
    const removed = new Set(remove.map(key));
    const base = set ?? (options.clear ? [] : principal.grants);
    const next = [...new Map([...base, ...add].filter((g) => !removed.has(key(g))).map((g) => [key(g), g])).values()];
    principal = await client.setGrants(principal.id, next);
  }
  if (options.json) return printJson(principal);
  print(principal.grants.length > 0 ? principal.grants.map(showGrant).join('\n') : `${principal.name} has no grants`);
}

export async function secretRotate(ref: string, options: CommandOptions & { name?: string | undefined; expires?: string | undefined }): Promise<void> {
  const expiresAt = options.expires === undefined ? undefined : parseExpiry(options.expires);
  const client = await connectAdmin(options);
  const principal = await client.getPrincipal(ref);
  const secret = await client.setSecret(principal.id, {
    ...(options.name !== undefined ? { name: options.name } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  });
  if (options.json) {
    printJson(secret);
  } else {
    const rotated = principal.secrets.some((s) => s.name === secret.name);
    print(
      `${rotated ? 'rotated' : 'created'} secret ${secret.name} of ${principal.kind} ${principal.name}${rotated ? '; refresh tokens bought with the old one are revoked' : ''}`,
    );
    printSecret(secret, principal);
  }
  warnSecretShownOnce();
}

export async function secretDelete(ref: string, name: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  await client.deleteSecret(ref, name);
  if (options.json) return printJson({ deleted: name, principal: ref });
  print(`deleted secret ${name} of ${ref}; refresh tokens bought with it are revoked`);
}

// ---------------------------------------------------------------------------------------------
// Federated credentials (service principals only)

export interface FederatedAddOptions {
  preset?: string | undefined;
  repository?: string | undefined;
  repositoryId?: string | undefined;
  repositoryOwnerId?: string | undefined;
  ref?: string | undefined;
  environment?: string | undefined;
  issuer?: string | undefined;
  namespace?: string | undefined;
  serviceAccount?: string | undefined;
  audience?: string[] | undefined;
  subject?: string | undefined;
  condition?: string[] | undefined;
}

const presets = ['github', 'kubernetes', 'gitlab'] as const;

export async function federatedList(ref: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const { credentials } = await client.listFederatedCredentials(ref);
  if (options.json) return printJson({ credentials });
  if (credentials.length === 0) return print(`${ref} has no federated credentials`);
  print(
    table([
      ['NAME', 'ISSUER', 'SUBJECT', 'AUDIENCES', 'CONDITIONS', 'CREATED'],
      ...credentials.map((c) => [c.name, c.issuer, c.subject, c.audiences.join(', '), c.conditions.map(showCondition).join(', ') || '-', c.createdAt]),
    ]),
  );
}

/**
 * Adds (or replaces) a federated credential: `--preset github|kubernetes|gitlab` with that
 * preset's flags, or `--issuer --audience --subject`. The server validates the rest and says
 * which field is wrong.
 */
export async function federatedAdd(ref: string, name: string, options: CommandOptions & FederatedAddOptions): Promise<void> {
  const body = federatedBody(name, options);
  const client = await connectAdmin(options);
  const { credential, replaced } = await client.putFederatedCredential(ref, body);
  if (options.json) return printJson({ credential, replaced });
  print(
    `${replaced ? 'replaced' : 'added'} federated credential ${credential.name} of ${ref}${replaced ? '; refresh tokens bought with the old one are revoked' : ''}`,
  );
  print(`  trusts ${showTrust(credential)}`);
}

export async function federatedRemove(ref: string, name: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  await client.deleteFederatedCredential(ref, name);
  if (options.json) return printJson({ deleted: name, principal: ref });
  print(`removed federated credential ${name} of ${ref}; refresh tokens bought with it are revoked`);
}

/** The API body from the flags; flags that do not fit the form are refused here, before logging in. */
export function federatedBody(name: string, options: FederatedAddOptions): FederatedCredentialBody {
  const conditions = (options.condition ?? []).map(parseCondition);
  const common: Partial<FederatedCredentialBody> = {
    ...(options.audience !== undefined ? { audiences: options.audience } : {}),
    ...(conditions.length > 0 ? { conditions } : {}),
    ...(options.issuer !== undefined ? { issuer: options.issuer } : {}),
  };
  if (options.preset === undefined) {
    const presetOnly = (['repository', 'repositoryId', 'repositoryOwnerId', 'ref', 'environment', 'namespace', 'serviceAccount'] as const).filter(
      (k) => options[k] !== undefined,
    );
    if (presetOnly.length > 0) throw new AdminError(`${presetOnly.map(flag).join(', ')} need --preset (github, kubernetes or gitlab)`);
    if (options.issuer === undefined || options.subject === undefined || options.audience === undefined) {
      throw new AdminError("without --preset, give --issuer URL, --subject SUB and --audience AUD (the registry's audience, as its 401 challenge names it)");
    }
    return { name, ...common, subject: options.subject };
  }
  if (!(presets as readonly string[]).includes(options.preset)) throw new AdminError(`--preset must be one of ${presets.join(', ')}`);
  if (options.subject !== undefined) throw new AdminError(`--subject does not go with --preset: the ${options.preset} preset builds the subject`);
  return {
    name,
    preset: options.preset as (typeof presets)[number],
    ...common,
    ...(options.repository !== undefined ? { repository: options.repository } : {}),
    ...(options.repositoryId !== undefined ? { repositoryId: options.repositoryId } : {}),
    ...(options.repositoryOwnerId !== undefined ? { repositoryOwnerId: options.repositoryOwnerId } : {}),
    ...(options.ref !== undefined ? { ref: options.ref } : {}),
    ...(options.environment !== undefined ? { environment: options.environment } : {}),
    ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    ...(options.serviceAccount !== undefined ? { serviceAccount: options.serviceAccount } : {}),
  };
}

/**
 * A claim condition: `claim=value` (equals), `claim~glob` (`*` and `?`), or `claim:a,b,c` (one
 * of). The first of `=`, `~`, `:` ends the claim name.
 */
export function parseCondition(text: string): ClaimConditionView {
  const at = text.search(/[=~:]/);
  const claim = text.slice(0, at);
  if (at <= 0) throw new AdminError(`invalid condition ${JSON.stringify(text)}: expected claim=value, claim~glob or claim:a,b,c`);
  const value = text.slice(at + 1);
  const op = text[at];
  if (op === '=') return { claim, equals: value };
  if (op === '~') return { claim, glob: value };
  const values = value.split(',').filter((v) => v.length > 0);
  if (values.length === 0) throw new AdminError(`invalid condition ${JSON.stringify(text)}: claim:a,b,c lists at least one value`);
  return { claim, oneOf: values };
}

function flag(option: string): string {
  return `--${option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

// ---------------------------------------------------------------------------------------------
// Policy and operations

/** Shows the anonymous-pull patterns, or replaces them (`--clear` turns anonymous pull off). */
export async function anonymousPull(patterns: string[], options: CommandOptions & { clear?: boolean | undefined }): Promise<void> {
  if (patterns.length > 0 && options.clear) throw new AdminError('give patterns or --clear, not both');
  for (const pattern of patterns)
    if (!isValidPattern(pattern))
      throw new AdminError(`invalid repository pattern ${JSON.stringify(pattern)}: use names with * (one path component) and ** (any depth)`);
  const client = await connectAdmin(options);
  const result = patterns.length > 0 || options.clear ? await client.setAnonymousPull(patterns) : await client.getAnonymousPull();
  if (options.json) return printJson(result);
  print(result.patterns.length > 0 ? result.patterns.join('\n') : 'anonymous pull is off (no patterns)');
}

export async function keysRotate(options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const result = await client.rotateKeys();
  if (options.json) return printJson(result);
  print(`new signing key ${result.kid}; tokens signed with the previous keys stay valid until they expire`);
}

export async function keysList(options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const result = await client.listKeys();
  if (options.json) return printJson(result);
  print(
    table([
      ['KID', 'ALG', 'STATE', 'CREATED', 'RETIRED', 'REVOKED'],
      ...result.keys.map((k) => [k.kid, k.alg, k.state, k.createdAt, k.retiredAt ?? '-', k.revokedAt ?? '-']),
    ]),
  );
}

/** Revokes a signing key: every token it signed is refused from now on (see docs/auth.md). */
export async function keysRevoke(kid: string, options: CommandOptions): Promise<void> {
  const client = await connectAdmin(options);
  const result = await client.revokeKey(kid);
  if (options.json) return printJson(result);
  print(
    `revoked signing key ${result.kid}: every token it signed is refused (by other replicas within auth.keyRevocationCheckMs); new tokens are signed with ${result.signingKid}`,
  );
}

/** `berth admin audit` is `berth audit` (cli/audit.ts). */
export { auditList } from './audit.js';

// ---------------------------------------------------------------------------------------------
// Parsing and printing

/** `PATTERN=PERMISSION`, e.g. `team-a/**=push` or `vendor/*=content/read`. */
export function parseGrant(text: string): GrantInput {
  const eq = text.lastIndexOf('=');
  const pattern = text.slice(0, eq);
  const permission = text.slice(eq + 1);
  if (eq <= 0 || !isValidPattern(pattern)) throw new AdminError(`invalid grant ${JSON.stringify(text)}: expected PATTERN=PERMISSION, e.g. team-a/**=push`);
  if (!isPermission(permission)) {
    throw new AdminError(`unknown permission ${JSON.stringify(permission)}: use pull, push, delete, owner, or content/read|write|delete, metadata/read|write`);
  }
  return { pattern, permission };
}

/** An ISO 8601 date(-time), or a duration from now: `90d`, `12h`, `30m`. */
export function parseExpiry(text: string, now = Date.now()): number {
  const duration = /^(\d+)([dhm])$/.exec(text);
  if (duration) return now + Number(duration[1]) * { d: 86_400_000, h: 3_600_000, m: 60_000 }[duration[2] as 'd' | 'h' | 'm'];
  const ms = /^\d{4}-\d\d-\d\d/.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(ms)) throw new AdminError(`invalid expiry ${JSON.stringify(text)}: give an ISO date like 2026-12-31 or a duration like 90d`);
  return ms;
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}

export function showGrant(g: GrantInput): string {
  return `${g.permission} on ${g.pattern}`;
}

function status(p: PrincipalView): string {
  return p.disabled ? 'disabled' : p.expiresAt !== null && Date.parse(p.expiresAt) <= Date.now() ? 'expired' : 'enabled';
}

function describe(p: PrincipalView): string {
  // A server older than the CLI does not send federatedCredentials.
  const federated = p.federatedCredentials ?? [];
  const lines = [
    `name:         ${p.name}`,
    `id:           ${p.id}`,
    `kind:         ${p.kind}`,
    `status:       ${status(p)}`,
    `description:  ${p.description ?? '-'}`,
    `created:      ${p.createdAt}`,
    `expires:      ${p.expiresAt ?? 'never'}`,
    `grants:${p.grants.length === 0 ? '       none' : ''}`,
    ...p.grants.map((g) => `  ${showGrant(g)}`),
    `secrets:${p.secrets.length === 0 ? '      none' : ''}`,
    ...p.secrets.map((s) => `  ${s.name} (created ${s.createdAt}, expires ${s.expiresAt ?? 'never'})`),
    ...(p.kind === 'service' ? [`federated:${federated.length === 0 ? '    none' : ''}`, ...federated.map((c) => `  ${c.name}: ${showTrust(c)}`)] : []),
  ];
  return lines.join('\n');
}

function printSecret(secret: IssuedSecret, principal: Pick<PrincipalView, 'name'>): void {
  print(`login name: ${principal.name}`);
  print(`${secret.name}: ${secret.value}`);
}

/** Straight to the terminal's stderr: stdout may be captured by a script that stores the secret. */
export function warnSecretShownOnce(): void {
  process.stderr.write('warning: the secret above is shown only once and cannot be retrieved later; store it now\n');
}

export function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
