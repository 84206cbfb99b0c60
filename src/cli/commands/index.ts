/**
 * The `berth` program: every command with its arguments, options and description, registered
 * eagerly (so `berth --help` lists them all), each implementation imported only by its action.
 * test/cli/lazy-commands.test.ts checks what `--help`, `login` and `serve` load.
 */
import { Command } from 'commander';
import { registerAdminCommands } from './admin.js';
import { registerCacheCommands } from './cache.js';
import { managed } from './common.js';
import { registerImportCommands } from './imports.js';
import { registerLifecycleCommands } from './lifecycle.js';
import { registerLoginCommands } from './login.js';
import { registerOperationsCommands } from './operations.js';
import { registerServerCommands } from './server.js';
import { registerSyncCommands } from './sync.js';
import { registerVerifyCommands } from './verify.js';
import { registerWebhookCommands } from './webhooks.js';

export function berthProgram(): Command {
  const program = new Command('berth').description('Berth: an OCI registry with keyless auth for CI and Kubernetes');
  registerServerCommands(program);
  registerLoginCommands(program);
  // Management (owners only): `berth admin …`, `berth keys rotate`, `berth apply`. Each talks to a
  // running registry's /api/v1 as the user `berth login` saved, or --username + --password-stdin.
  registerAdminCommands(program, managed);
  registerWebhookCommands(program, managed);
  registerImportCommands(program, managed);
  registerSyncCommands(program, managed);
  registerVerifyCommands(program);
  registerCacheCommands(program, managed);
  registerLifecycleCommands(program, managed);
  registerOperationsCommands(program, managed);
  return program;
}
