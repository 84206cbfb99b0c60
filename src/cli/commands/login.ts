/** `berth login`, `logout`, `token`: arguments only; cli/login.ts and token.ts run them. */
import type { Command } from 'commander';

export function registerLoginCommands(program: Command): void {
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
    .option('--audience <aud>', 'with --oidc github: the audience to request (default: the one the registry advertises)')
    .action(async (registry: string, options: { username?: string; passwordStdin?: boolean; oidc?: string; identity?: string; audience?: string }) =>
      (await import('../login.js')).login(registry, options),
    );

  program
    .command('logout')
    .description('forget the stored login for a registry')
    .argument('<registry>', 'HOST[:PORT]')
    .action(async (registry: string) => (await import('../login.js')).logout(registry));

  program
    .command('token')
    .description('print an access token for --scope, or with --expose a refresh token to use as a password (like az acr login --expose-token)')
    .argument('<registry>', 'HOST[:PORT] or https://HOST[:PORT]')
    .option('--scope <scope>', 'e.g. repository:team/app:pull (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--expose', 'print {"accessToken","loginServer","username"}: a fresh refresh token for the null-GUID user')
    .option('-u, --username <name>', 'log in with this user instead of the stored login (with --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .action(async (registry: string, options: { scope?: string[]; expose?: boolean; username?: string; passwordStdin?: boolean }) =>
      (await import('../token.js')).token(registry, options),
    );
}
