/** `berth verify`: arguments only; cli/verify.ts runs it (and only then loads the sigstore libraries). */
import type { Command } from 'commander';
import type { VerifyOptions } from '../verify.js';
import { collect } from './common.js';

export function registerVerifyCommands(program: Command): void {
  program
    .command('verify')
    .description("check an image's signed push attestation: signature, subject digest and who pushed it (docs/attestations.md)")
    .argument('<image>', 'HOST:PORT/REPO[:TAG|@DIGEST] (or REPO… with --registry)')
    .option('--registry <host:port>', 'the registry (env BERTH_REGISTRY)')
    .option(
      '--identity <claim=glob>',
      'a condition on who pushed, e.g. job_workflow_ref=acme/app/.github/workflows/release.yml@refs/tags/* or ref=refs/tags/* or issuer=https://token.actions.githubusercontent.com (repeatable; all must hold)',
      collect,
    )
    .option('--key <file>', 'a trusted PEM public key (repeatable); pins the keys instead of asking the registry', collect)
    .option('--registry-keys', "also trust the registry's published attestation keys (the default without --key)")
    .option('--json', 'print JSON for scripts')
    .action(async (image: string, options: VerifyOptions) => (await import('../verify.js')).verify(image, options));
}
