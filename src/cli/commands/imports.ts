/** `berth import`, `berth imports list|show|retry`: arguments only; cli/import.ts runs them. */
import type { Command } from 'commander';
import type { CommandOptions } from '../admin.js';
import type { ImportOptions } from '../import.js';
import { collect, positiveInteger, type Managed } from './common.js';

const load = () => import('../import.js');

/** `berth import` and `berth imports …`; `managed` adds --registry, --username, --password-stdin, --json. */
export function registerImportCommands(program: Command, managed: Managed): void {
  const withSource = (command: Command): Command =>
    command
      .option('--source-username <name>', 'user name at the source registry (with --source-password-stdin)')
      .option('--source-password-stdin', 'read the source password from standard input')
      .option('--source-identity <client-id>', 'a service principal of a source Berth (federation; with --source-token-file)')
      .option('--source-token-file <file>', 'an OIDC token that source Berth trusts for that principal')
      .option('--no-wait', 'only queue the import and print its id');
  managed(
    withSource(
      program
        .command('import')
        .description('copy an image from another registry into this one, server-side, digests unchanged (like az acr import)')
        .argument('<source-ref>', 'the image: [REGISTRY/]REPO[:TAG|@DIGEST]; no registry means Docker Hub (docker.io/library/… for one-word names)')
        .option('--image <repo:tag>', 'target repository and tag (repeatable; default: the source repository and tag)', collect)
        .option('--repository <repo>', 'also copy into this repository without a tag (repeatable)', collect)
        .option('--force', 'overwrite target tags that exist (mode Force; default NoForce fails before copying)')
        .option('--referrers', 'also copy the referrers (signatures, SBOMs) of the image and of each platform'),
    ),
  ).action(async (sourceRef: string, options: ImportOptions) => (await load()).importImage(sourceRef, options));

  const imports = program.command('imports').description('import jobs: list, show, retry');
  managed(
    imports
      .command('list')
      .description('list import jobs, newest first (owners see all, others their own)')
      .option('--status <status>', 'only queued, running, succeeded or failed')
      .option('--limit <n>', 'how many (default 100, at most 1000)', positiveInteger),
  ).action(async (options: CommandOptions & { status?: string; limit?: number }) => (await load()).importsList(options));
  managed(imports.command('show').description('show one import job').argument('<id>', 'the job id')).action(async (id: string, options: CommandOptions) =>
    (await load()).importsShow(id, options),
  );
  managed(
    withSource(imports.command('retry').description('run a failed import again; what it copied before is not downloaded again').argument('<id>', 'the job id')),
  ).action(async (id: string, options: ImportOptions) => (await load()).importsRetry(id, options));
}
