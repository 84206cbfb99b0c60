// Bundles the `berth` command (src/bin/berth.ts) into dist/bin/berth.js and its chunks in
// dist/bin/chunks/, after `tsc` has emitted dist/ (package.json's `build`, the Containerfile).
//
// Why: Node keeps a module record, its source text and its bindings for every ES module it loads,
// and `berth serve` loaded over 300 of Berth's own at start, and ~70 files of zod, pino and its
// helpers, and commander. Bundled, the same code idles at ~7 MiB less RSS (docs/operations.md,
// "Memory").
// Code splitting keeps what each command loads on demand where it was (`import()` of a command's
// implementation becomes the import of a chunk), so `berth --help` still loads only the command
// definitions. Not minified: stack traces keep Berth's own names and lines.
//
// Packages stay in node_modules, loaded by Node as before, except the few that `serve` loads at
// start (`bundled`): the rest are native (better-sqlite3), loaded on first use through
// `createRequire` (kysely, prom-client, yaml, semver, re2js), or large and used by one command
// (the AWS SDK, @kubernetes/client-node, sigstore, OpenTelemetry).
// The other two commands (docker-credential-berth, berth-credential-provider) run as tsc emits them.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

const entry = 'src/bin/berth.ts';
const bundled = new Set(['zod', 'zod-to-json-schema', 'pino', 'commander', 'ipaddr.js']);

const manifest = JSON.parse(readFileSync('package.json', 'utf8'));
const external = Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies }).filter((name) => !bundled.has(name));
for (const name of bundled) {
  if (!(name in manifest.dependencies)) throw new Error(`scripts/bundle.mjs bundles ${name}, which is not a dependency`);
}

// The entry's second line is read by the shell (src/bin/berth.ts says why); esbuild keeps the first
// (`#!/bin/sh`) and drops comments, so the banner puts the second back in its place. Bundled
// CommonJS packages (pino, commander) call `require` for Node's own modules: an ES module has none,
// so each output file gets one.
const [hashbang, shellLine] = readFileSync(entry, 'utf8').split('\n');
if (hashbang !== '#!/bin/sh' || !shellLine?.startsWith('//usr/bin/true;')) throw new Error(`${entry} no longer starts with the shell lines`);

// Chunk names carry a hash of their content: the last build's would stay behind.
rmSync('dist/bin/chunks', { recursive: true, force: true });

const result = await build({
  entryPoints: { berth: entry },
  outdir: 'dist/bin',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  sourcemap: true,
  banner: {
    js: `${shellLine}\nimport { createRequire as createRequireForBundle } from 'node:module';\nconst require = createRequireForBundle(import.meta.url);`,
  },
  metafile: true,
  logLevel: 'warning',
});
// Which sources each output holds (test/cli/lazy-commands.test.ts checks what the bundled command loads).
writeFileSync('dist/bin/berth.meta.json', JSON.stringify(result.metafile.outputs));

// Every output in ASCII. V8 keeps a script's source in its heap for as long as the script's
// functions live, one byte a character if every character fits in Latin-1 and two bytes otherwise:
// one arrow in a comment doubled the 425 KB of `serve`'s chunk to 850 KB (a heap snapshot of an
// idle `berth serve`). esbuild writes strings, templates and regular expressions in ASCII already
// (its default `charset`) but keeps some comments as they are. What is left is escaped as `\uXXXX`:
// plain text in a comment, and the same character in a string, a regular expression or a name.
// Columns after an escaped character on its line move in the source map: only comments have one.
for (const output of Object.keys(result.metafile.outputs).filter((file) => file.endsWith('.js'))) {
  const text = readFileSync(output, 'utf8');
  const ascii = text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (ascii !== text) writeFileSync(output, ascii);
}
