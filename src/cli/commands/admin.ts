/** `berth admin …`, `berth keys rotate|list|revoke`, `berth apply`, `berth history`: arguments only; cli/admin.ts, apply.ts and history.ts run them. */
import type { Command } from 'commander';
import type { CommandOptions as AdminOptions, FederatedAddOptions } from '../admin.js';
import type { AuditListOptions } from '../audit.js';
import { collect, positiveInteger, type Managed } from './common.js';
import { auditOptions } from './operations.js';

const load = () => import('../admin.js');

export function registerAdminCommands(program: Command, managed: Managed): void {
  const adminCommand = program.command('admin').description('manage principals, grants and policy of a running registry (owners only)');
  const principal = adminCommand.command('principal').description('users, service principals and repository-scoped tokens');
  managed(principal.command('list').description('list principals').option('--kind <kind>', 'only user, admin, service or token')).action(
    async (options: AdminOptions & { kind?: string }) => (await load()).principalList(options),
  );
  managed(
    principal
      .command('create')
      .description('create a principal and print its first secret once')
      .argument('<kind>', 'user, service or token')
      .argument('[name]', 'login name (a service principal without one gets a generated client id)')
      .option('--grant <pattern=permission>', 'grant a permission on a repository pattern, e.g. team-a/**=push (repeatable)', collect)
      .option('--description <text>', 'what it is for')
      .option('--expires <when>', 'expiry: an ISO date, or a duration like 90d'),
  ).action(async (kind: string, name: string | undefined, options: AdminOptions & { grant?: string[]; description?: string; expires?: string }) =>
    (await load()).principalCreate(kind, name, options),
  );
  managed(principal.command('show').description('show one principal').argument('<principal>', 'name or id')).action(
    async (ref: string, options: AdminOptions) => (await load()).principalShow(ref, options),
  );
  managed(principal.command('disable').description('disable a principal and revoke its refresh tokens').argument('<principal>', 'name or id')).action(
    async (ref: string, options: AdminOptions) => (await load()).principalSetDisabled(ref, true, options),
  );
  managed(principal.command('enable').description('enable a disabled principal').argument('<principal>', 'name or id')).action(
    async (ref: string, options: AdminOptions) => (await load()).principalSetDisabled(ref, false, options),
  );
  managed(
    principal.command('delete').description('delete a principal with its secrets, grants and refresh tokens').argument('<principal>', 'name or id'),
  ).action(async (ref: string, options: AdminOptions) => (await load()).principalDelete(ref, options));
  managed(
    principal
      .command('grants')
      .description("show a principal's grants, or change them")
      .argument('<principal>', 'name or id')
      .option('--set <pattern=permission>', 'replace all grants with these (repeatable)', collect)
      .option('--add <pattern=permission>', 'add a grant (repeatable)', collect)
      .option('--remove <pattern=permission>', 'remove a grant (repeatable)', collect)
      .option('--clear', 'remove every grant'),
  ).action(async (ref: string, options: AdminOptions & { set?: string[]; add?: string[]; remove?: string[]; clear?: boolean }) =>
    (await load()).principalGrants(ref, options),
  );
  managed(
    principal
      .command('secret-rotate')
      .description("create or rotate a secret and print it once (rotation revokes the old one's refresh tokens)")
      .argument('<principal>', 'name or id')
      .option('--name <name>', 'secret name (default: password; password1 for tokens and the admin user; next secretN for services)')
      .option('--expires <when>', 'expiry: an ISO date, or a duration like 90d'),
  ).action(async (ref: string, options: AdminOptions & { name?: string; expires?: string }) => (await load()).secretRotate(ref, options));
  managed(
    principal
      .command('secret-delete')
      .description('delete a secret and revoke its refresh tokens')
      .argument('<principal>', 'name or id')
      .argument('<name>', 'secret name'),
  ).action(async (ref: string, name: string, options: AdminOptions) => (await load()).secretDelete(ref, name, options));
  managed(
    adminCommand
      .command('anonymous-pull')
      .description('show the repository patterns anyone may pull without logging in, or replace them')
      .argument('[patterns...]', 'repository patterns, e.g. public/**')
      .option('--clear', 'turn anonymous pull off'),
  ).action(async (patterns: string[], options: AdminOptions & { clear?: boolean }) => (await load()).anonymousPull(patterns, options));
  managed(auditOptions(adminCommand.command('audit').description('show the audit log, newest first (the same as `berth audit`)'))).action(
    async (options: AuditListOptions) => (await load()).auditList(options),
  );

  const federated = adminCommand
    .command('federated')
    .description('federated credentials: which OIDC tokens (GitHub Actions, Kubernetes, GitLab, any issuer) a service principal accepts instead of a secret');
  managed(federated.command('list').description("list a service principal's federated credentials").argument('<principal>', 'name or id')).action(
    async (ref: string, options: AdminOptions) => (await load()).federatedList(ref, options),
  );
  managed(
    federated
      .command('add')
      .description('add a federated credential, or replace the one with that name (revoking the refresh tokens it bought)')
      .argument('<principal>', 'a service principal: name (client id) or id')
      .argument('<name>', "the credential's name, e.g. github-main")
      .option('--preset <preset>', 'github, kubernetes or gitlab')
      .option('--repository <owner/repo>', 'github, gitlab: the repository (github allows globs, e.g. acme/*, and owner@ID/repo@ID)')
      .option('--repository-id <id>', "github: pin the repository's numeric id (the repository_id claim)")
      .option('--repository-owner-id <id>', "github: pin the owner's numeric id (the repository_owner_id claim)")
      .option('--ref <ref>', 'github, gitlab: a branch (main), a branch glob (release-*) or full ref (refs/tags/v*); default any ref')
      .option('--environment <name>', 'github: a deployment environment instead of a ref')
      .option('--issuer <url>', "the issuer URL (kubernetes: the cluster's service-account issuer; without --preset: required)")
      .option('--namespace <namespace>', 'kubernetes: the namespace')
      .option('--service-account <name>', 'kubernetes: the service account (default any in the namespace)')
      .option('--audience <aud>', "an accepted audience (repeatable; presets default to the registry's own)", collect)
      .option('--subject <sub>', 'without --preset: the exact sub claim, or a glob (* and ?)')
      .option('--condition <condition>', 'a claim condition: claim=value, claim~glob or claim:a,b,c (repeatable)', collect),
  ).action(async (ref: string, name: string, options: AdminOptions & FederatedAddOptions) => (await load()).federatedAdd(ref, name, options));
  managed(
    federated
      .command('remove')
      .description('remove a federated credential and revoke the refresh tokens it bought')
      .argument('<principal>', 'name or id')
      .argument('<name>', "the credential's name"),
  ).action(async (ref: string, name: string, options: AdminOptions) => (await load()).federatedRemove(ref, name, options));

  const keys = program.command('keys').description('token signing keys of a running registry (owners only)');
  managed(keys.command('rotate').description('sign new tokens with a new key; tokens signed with the old keys stay valid until they expire')).action(
    async (options: AdminOptions) => (await load()).keysRotate(options),
  );
  managed(keys.command('list').description('the signing keys and their state (active, retired, revoked)')).action(async (options: AdminOptions) =>
    (await load()).keysList(options),
  );
  managed(
    keys
      .command('revoke')
      .description('revoke a signing key after a leak: every token it signed, access and refresh, is refused from now on')
      .argument('<kid>', "the key id (berth keys list, or the kid of a token); one that starts with '-' goes after '--': berth keys revoke -- KID"),
  ).action(async (kid: string, options: AdminOptions) => (await load()).keysRevoke(kid, options));

  managed(
    program
      .command('apply')
      .description('make principals, grants and settings match a file (see docs/management.md)')
      .requiredOption('-f, --file <berth.yaml>', 'the desired state (- for standard input)')
      .option('--dry-run', 'only print the changes'),
  ).action(async (options: AdminOptions & { file: string; dryRun?: boolean }) => (await import('../apply.js')).apply(options));

  program
    .command('history')
    .description('who pushed what to a repository, and from which CI run (needs pull on it; see docs/provenance.md)')
    .argument('<reference>', 'REPO, REPO:TAG or REPO@DIGEST, optionally prefixed with HOST:PORT/')
    .option('--registry <host:port>', 'the registry (env BERTH_REGISTRY)')
    .option('--username <name>', 'log in as this principal instead of the saved `berth login`')
    .option('--password-stdin', "read that principal's password from standard input")
    .option('--json', "print the API's JSON for scripts")
    .option('--limit <n>', 'how many pushes (default 100, at most 1000)', positiveInteger)
    .action(async (reference: string, options: AdminOptions & { limit?: number }) => (await import('../history.js')).history(reference, options));
}
