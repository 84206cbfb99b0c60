#!/usr/bin/env node
/** `docker-credential-berth get|store|erase|list|version`. Entry point only: see cli/credential-helper.ts. */
import { credentialHelper, defaultHelperDeps } from '../cli/credential-helper.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const action = process.argv[2];
const needsInput = action === 'get' || action === 'store' || action === 'erase';
(needsInput ? readStdin() : Promise.resolve(''))
  .then((input) => credentialHelper(action, input, defaultHelperDeps()))
  .then(
    (output) => {
      process.stdout.write(output);
    },
    (err: unknown) => {
      // The protocol: the error message on stdout, exit status 1.
      process.stdout.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
