/** `berth serve`, `berth gc`, `berth controller`: arguments only; cli/serve.ts, gc.ts and controller.ts run them. */
import { InvalidArgumentError, type Command } from 'commander';
import type { ControllerFlags } from '../controller.js';

export function registerServerCommands(program: Command): void {
  program
    .command('serve')
    .description('run the registry (defaults: 127.0.0.1:5000, data in ./data)')
    .option('-c, --config <file>', 'YAML or JSON config file (env BERTH_CONFIG)')
    .option('--addr <host:port>', 'listen address (env BERTH_ADDR)')
    .option('--data <dir>', 'data directory (env BERTH_DATA)')
    .action(async (options: { config?: string; addr?: string; data?: string }) => (await import('../serve.js')).serve(options));

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
    .action(async (options: { config?: string; data?: string; dryRun?: boolean; grace?: number }) =>
      (await import('../gc.js')).gc({
        ...(options.config !== undefined ? { config: options.config } : {}),
        ...(options.data !== undefined ? { data: options.data } : {}),
        dryRun: options.dryRun ?? false,
        ...(options.grace !== undefined ? { graceMs: options.grace * 60_000 } : {}),
      }),
    );

  registerController(program);
}

/** `berth controller`: the Kubernetes pull-secret controller (the only command that loads @kubernetes/client-node). */
function registerController(program: Command): void {
  const collect = (value: string, previous: string[] = []) => [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
  const num = (value: string) => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new Error(`expected a number, got ${value}`);
    return n;
  };
  program
    .command('controller')
    .description('run the Kubernetes pull-secret controller (PullBinding -> always-fresh image pull secrets; see docs/kubernetes.md)')
    .option('--kubeconfig <file>', 'kubeconfig (env KUBECONFIG; default: in-cluster service account)')
    .option(
      '--allowed-registry <host[:port]>',
      'a registry bindings may name, or *.domain (repeatable or comma-separated; env BERTH_ALLOWED_REGISTRIES)',
      collect,
    )
    .option('--audience <aud>', 'the only audience service-account tokens are requested for (default berth; env BERTH_TOKEN_AUDIENCE)')
    .option('--token-expiration-seconds <n>', 'TokenRequest lifetime, at least 600 (default 3600)', num)
    .option('--refresh-fraction <f>', "refresh after this fraction of the credentials' lifetime (default 0.5)", num)
    .option('--namespace <ns>', 'watch only this namespace (default all)')
    .option('--workers <n>', 'bindings reconciled in parallel (default 4)', num)
    .option('--resync-seconds <n>', 'look at every binding at least this often (default 600)', num)
    .option('--metrics-addr <host:port>', '/metrics, /healthz, /readyz (default 127.0.0.1:8080; off for none)')
    .option('--log-level <level>', 'trace, debug, info, warn, error (default info)')
    .option('--require-attestations', 'mint pull credentials only for repositories whose Berth policy requires attestations (env BERTH_REQUIRE_ATTESTATIONS)')
    .action(async (flags: ControllerFlags) => (await import('../controller.js')).controller(flags));
}
