#!/usr/bin/env node
/** The `berth` command. Entry point only: parse arguments, call into cli/. */
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/load.js';
import { gc } from '../cli/gc.js';
import { serve } from '../cli/serve.js';

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

program.parseAsync(process.argv).catch((err: unknown) => {
  const message = err instanceof ConfigError ? err.message : err instanceof Error ? err.message : String(err);
  console.error(`berth: ${message}`);
  process.exit(1);
});
