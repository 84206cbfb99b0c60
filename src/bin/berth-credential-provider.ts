#!/usr/bin/env node
/**
 * `berth-credential-provider`: the kubelet's image credential provider (exec plugin). Reads a
 * CredentialProviderRequest on stdin, writes a CredentialProviderResponse on stdout; on failure one
 * line on stderr and exit status 1 (the kubelet logs it and pulls without these credentials).
 * Entry point only: see kube/credential-provider.ts and deploy/kubernetes/kubelet-credential-provider.yaml.
 *
 *   --allowed-registry HOST[:PORT]   registries to serve (repeatable; env BERTH_ALLOWED_REGISTRIES, comma-separated)
 *   --client-id ID                   Berth client id when the service account has no annotation (env BERTH_CLIENT_ID)
 *   --client-id-annotation KEY       service-account annotation naming the client id (default berth.dev/client-id)
 */
import { Command } from 'commander';
import { defaultClientIdAnnotation, provideCredentials } from '../kube/credential-provider.js';
import { exchangeAtBerth, requireAttestationsAtBerth } from '../kube/exchange.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const collect = (value: string, previous: string[] = []) => [
  ...previous,
  ...value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
];
const program = new Command('berth-credential-provider')
  .description('kubelet image credential provider for Berth registries (service-account token mode)')
  .option('--allowed-registry <host[:port]>', 'a registry to serve, or *.domain (repeatable)', collect)
  .option('--client-id <id>', 'the Berth client id when the service account does not name one')
  .option('--client-id-annotation <key>', 'service-account annotation holding the client id', defaultClientIdAnnotation)
  .option('--require-attestations', 'only for repositories whose Berth policy requires attestations at pull (env BERTH_REQUIRE_ATTESTATIONS=true)')
  .parse(process.argv);
const options = program.opts<{ allowedRegistry?: string[]; clientId?: string; clientIdAnnotation: string; requireAttestations?: boolean }>();
const env = process.env;
const requireAttestations = options.requireAttestations ?? env['BERTH_REQUIRE_ATTESTATIONS'] === 'true';

readStdin()
  .then((input) =>
    provideCredentials(
      input,
      {
        allowedRegistries: options.allowedRegistry ?? collect(env['BERTH_ALLOWED_REGISTRIES'] ?? ''),
        clientId: options.clientId ?? (env['BERTH_CLIENT_ID'] || undefined),
        clientIdAnnotation: options.clientIdAnnotation,
      },
      requireAttestations ? requireAttestationsAtBerth(exchangeAtBerth) : exchangeAtBerth,
    ),
  )
  .then(
    (response) => {
      process.stdout.write(`${JSON.stringify(response)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`berth-credential-provider: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
