#!/usr/bin/env node
/** The `berth` command. Entry point only: parse arguments, call into cli/. */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/load.js';
import * as admin from '../cli/admin.js';
import { apply } from '../cli/apply.js';
import { gc } from '../cli/gc.js';
import { history } from '../cli/history.js';
import { registerImportCommands } from '../cli/import.js';
import { login, logout } from '../cli/login.js';
import { token } from '../cli/token.js';
import { serve } from '../cli/serve.js';
import { registerSyncCommands } from '../cli/sync.js';
import { registerControllerCommand } from '../cli/controller.js';
import { registerWebhookCommands } from '../cli/webhooks.js';

const program = new Command('berth').description('Berth: an OCI registry with keyless auth for CI and Kubernetes');

program
  .command('serve')
  .description('run the registry (defaults: 127.0.0.1:5000, data in ./data)')
  .option('-c, --config <file>', 'YAML or JSON config file (env BERTH_CONFIG)')
  .option('--addr <host:port>', 'listen address (env BERTH_ADDR)')
  .option('--data <dir>', 'data directory (env BERTH_DATA)')
  .action((options: { config?: string; addr?: string; data?: string }) => serve(options));

program
  .command('gc')
  .description('delete blobs no manifest references and abandoned uploads')
  .option('-c, --config <file>', 'YAML or JSON config file (env BERTH_CONFIG)')
  .option('--data <dir>', 'data directory (env BERTH_DATA)')
  .option('--dry-run', 'only show what would be deleted')
  .option('--grace <minutes>', 'keep blobs pushed within this many minutes (default from config: 60)', (value) => {
    const minutes = Number(value);
    if (!Number.isFinite(minutes) || minutes < 0) throw new InvalidArgumentError('expected a number of minutes');
    return minutes;
  })
  .action((options: { config?: string; data?: string; dryRun?: boolean; grace?: number }) =>
    gc({
      ...(options.config !== undefined ? { config: options.config } : {}),
      ...(options.data !== undefined ? { data: options.data } : {}),
      dryRun: options.dryRun ?? false,
      ...(options.grace !== undefined ? { graceMs: options.grace * 60_000 } : {}),
    }),
  );

program
  .command('login')
  .description('log in to a registry and store only a refresh token where docker, podman and skopeo find it')
  .argument('<registry>', 'HOST[:PORT] or https://HOST[:PORT]')
  .option('-u, --username <name>', 'user name (00000000-0000-0000-0000-000000000000: the password is a refresh token)')
  .option('--password-stdin', 'read the password from stdin (else prompted for on a terminal)')
  .option(
    '--oidc <source>',
    'log in with a workload identity token instead: github (GitHub Actions), file:PATH (e.g. a Kubernetes service-account token) or env:VAR',
  )
  .option('--identity <client-id>', 'with --oidc: the service principal whose federated credential accepts the token')
  .option('--audience <aud>', 'with --oidc github: the audience to request (default berth)')
  .action((registry: string, options: { username?: string; passwordStdin?: boolean; oidc?: string; identity?: string; audience?: string }) =>
    login(registry, options),
  );

program
  .command('logout')
  .description('forget the stored login for a registry')
  .argument('<registry>', 'HOST[:PORT]')
  .action((registry: string) => logout(registry));

program
  .command('token')
  .description('print an access token for --scope, or with --expose a refresh token to use as a password (like az acr login --expose-token)')
  .argument('<registry>', 'HOST[:PORT] or https://HOST[:PORT]')
  .option('--scope <scope>', 'e.g. repository:team/app:pull (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
  .option('--expose', 'print {"accessToken","loginServer","username"}: a fresh refresh token for the null-GUID user')
  .option('-u, --username <name>', 'log in with this user instead of the stored login (with --password-stdin)')
  .option('--password-stdin', 'read the password from stdin')
  .action((registry: string, options: { scope?: string[]; expose?: boolean; username?: string; passwordStdin?: boolean }) => token(registry, options));

// Management (owners only): `berth admin …`, `berth keys rotate`, `berth apply`. Each talks to a
// running registry's /api/v1 as the user `berth login` saved, or --username + --password-stdin.
type AdminOptions = admin.CommandOptions;
const managed = (command: Command): Command =>
  command
    .option('--registry <host:port>', 'the registry (env BERTH_REGISTRY)')
    .option('--username <name>', 'log in as this owner instead of the saved `berth login`')
    .option('--password-stdin', "read that owner's password from standard input")
    .option('--json', 'print JSON for scripts');
const collect = (value: string, previous: string[] = []) => [...previous, value];
const positiveInteger = (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

const adminCommand = program.command('admin').description('manage principals, grants and policy of a running registry (owners only)');
const principal = adminCommand.command('principal').description('users, service principals and repository-scoped tokens');
managed(principal.command('list').description('list principals').option('--kind <kind>', 'only user, admin, service or token')).action(
  (options: AdminOptions & { kind?: string }) => admin.principalList(options),
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
).action((kind: string, name: string | undefined, options: AdminOptions & { grant?: string[]; description?: string; expires?: string }) =>
  admin.principalCreate(kind, name, options),
);
managed(principal.command('show').description('show one principal').argument('<principal>', 'name or id')).action((ref: string, options: AdminOptions) =>
  admin.principalShow(ref, options),
);
managed(principal.command('disable').description('disable a principal and revoke its refresh tokens').argument('<principal>', 'name or id')).action(
  (ref: string, options: AdminOptions) => admin.principalSetDisabled(ref, true, options),
);
managed(principal.command('enable').description('enable a disabled principal').argument('<principal>', 'name or id')).action(
  (ref: string, options: AdminOptions) => admin.principalSetDisabled(ref, false, options),
);
managed(principal.command('delete').description('delete a principal with its secrets, grants and refresh tokens').argument('<principal>', 'name or id')).action(
  (ref: string, options: AdminOptions) => admin.principalDelete(ref, options),
);
managed(
  principal
    .command('grants')
    .description("show a principal's grants, or change them")
    .argument('<principal>', 'name or id')
    .option('--set <pattern=permission>', 'replace all grants with these (repeatable)', collect)
    .option('--add <pattern=permission>', 'add a grant (repeatable)', collect)
    .option('--remove <pattern=permission>', 'remove a grant (repeatable)', collect)
    .option('--clear', 'remove every grant'),
).action((ref: string, options: AdminOptions & { set?: string[]; add?: string[]; remove?: string[]; clear?: boolean }) => admin.principalGrants(ref, options));
managed(
  principal
    .command('secret-rotate')
    .description("create or rotate a secret and print it once (rotation revokes the old one's refresh tokens)")
    .argument('<principal>', 'name or id')
    .option('--name <name>', 'secret name (default: password; password1 for tokens and the admin user; next secretN for services)')
    .option('--expires <when>', 'expiry: an ISO date, or a duration like 90d'),
).action((ref: string, options: AdminOptions & { name?: string; expires?: string }) => admin.secretRotate(ref, options));
managed(
  principal
    .command('secret-delete')
    .description('delete a secret and revoke its refresh tokens')
    .argument('<principal>', 'name or id')
    .argument('<name>', 'secret name'),
).action((ref: string, name: string, options: AdminOptions) => admin.secretDelete(ref, name, options));
managed(
  adminCommand
    .command('anonymous-pull')
    .description('show the repository patterns anyone may pull without logging in, or replace them')
    .argument('[patterns...]', 'repository patterns, e.g. public/**')
    .option('--clear', 'turn anonymous pull off'),
).action((patterns: string[], options: AdminOptions & { clear?: boolean }) => admin.anonymousPull(patterns, options));
managed(
  adminCommand
    .command('audit')
    .description('show the audit log, newest first')
    .option('--limit <n>', 'how many entries (default 100, at most 1000)', positiveInteger)
    .option('--principal <principal>', 'only entries of this principal (name or id)'),
).action((options: AdminOptions & { limit?: number; principal?: string }) => admin.auditList(options));

const federated = adminCommand
  .command('federated')
  .description('federated credentials: which OIDC tokens (GitHub Actions, Kubernetes, GitLab, any issuer) a service principal accepts instead of a secret');
managed(federated.command('list').description("list a service principal's federated credentials").argument('<principal>', 'name or id')).action(
  (ref: string, options: AdminOptions) => admin.federatedList(ref, options),
);
managed(
  federated
    .command('add')
    .description('add a federated credential, or replace the one with that name (revoking the refresh tokens it bought)')
    .argument('<principal>', 'a service principal: name (client id) or id')
    .argument('<name>', "the credential's name, e.g. github-main")
    .option('--preset <preset>', 'github, kubernetes or gitlab')
    .option('--repository <owner/repo>', 'github, gitlab: the repository (github allows globs, e.g. acme/*)')
    .option('--ref <ref>', 'github, gitlab: a branch (main) or full ref (refs/tags/v*); default any ref')
    .option('--environment <name>', 'github: a deployment environment instead of a ref')
    .option('--issuer <url>', "the issuer URL (kubernetes: the cluster's service-account issuer; without --preset: required)")
    .option('--namespace <namespace>', 'kubernetes: the namespace')
    .option('--service-account <name>', 'kubernetes: the service account (default any in the namespace)')
    .option('--audience <aud>', 'an accepted audience (repeatable; presets default to berth)', collect)
    .option('--subject <sub>', 'without --preset: the exact sub claim, or a glob (* and ?)')
    .option('--condition <condition>', 'a claim condition: claim=value, claim~glob or claim:a,b,c (repeatable)', collect),
).action((ref: string, name: string, options: AdminOptions & admin.FederatedAddOptions) => admin.federatedAdd(ref, name, options));
managed(
  federated
    .command('remove')
    .description('remove a federated credential and revoke the refresh tokens it bought')
    .argument('<principal>', 'name or id')
    .argument('<name>', "the credential's name"),
).action((ref: string, name: string, options: AdminOptions) => admin.federatedRemove(ref, name, options));

const keys = program.command('keys').description('token signing keys of a running registry (owners only)');
managed(keys.command('rotate').description('sign new tokens with a new key; tokens signed with the old keys stay valid until they expire')).action(
  (options: AdminOptions) => admin.keysRotate(options),
);

managed(
  program
    .command('apply')
    .description('make principals, grants and settings match a file (see docs/management.md)')
    .requiredOption('-f, --file <berth.yaml>', 'the desired state (- for standard input)')
    .option('--dry-run', 'only print the changes'),
).action((options: AdminOptions & { file: string; dryRun?: boolean }) => apply(options));

program
  .command('history')
  .description('who pushed what to a repository, and from which CI run (needs pull on it; see docs/provenance.md)')
  .argument('<reference>', 'REPO, REPO:TAG or REPO@DIGEST, optionally prefixed with HOST:PORT/')
  .option('--registry <host:port>', 'the registry (env BERTH_REGISTRY)')
  .option('--username <name>', 'log in as this principal instead of the saved `berth login`')
  .option('--password-stdin', "read that principal's password from standard input")
  .option('--json', "print the API's JSON for scripts")
  .option('--limit <n>', 'how many pushes (default 100, at most 1000)', positiveInteger)
  .action((reference: string, options: AdminOptions & { limit?: number }) => history(reference, options));

registerWebhookCommands(program, managed);
registerControllerCommand(program);

registerImportCommands(program, managed);

registerSyncCommands(program, managed);

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
  console.error(`berth: ${message}`);
  process.exit(1);
});
