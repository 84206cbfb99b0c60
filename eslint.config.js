// @ts-check
/**
 * Lint rules for the whole tree. Two jobs:
 * 1. typescript-eslint's recommended rules (no type information: fast enough to run in `npm test`);
 * 2. the layering of docs/architecture.md as import-boundary rules (eslint-plugin-boundaries). Every
 *    folder under src/ is an element; `layers` below says what each may import. The allowed edges form
 *    a DAG, so no import circle between folders can exist. Change the layering here and in
 *    docs/architecture.md together.
 */
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/** Folder -> folders it may import (besides itself). Bottom first. */
const layers = {
  shared: [],
  oci: ['shared'],
  config: ['shared', 'oci', 'api'],
  net: ['shared', 'config', 'metrics'],
  storage: ['shared', 'oci', 'config', 'metrics'],
  metadata: ['shared', 'oci', 'config', 'metrics'],
  metrics: ['shared'],
  jobs: ['shared', 'metrics'],
  api: ['shared', 'oci'],
  remote: ['shared', 'oci', 'net', 'api', 'metrics'],
  federation: ['shared', 'oci', 'config', 'metadata', 'net', 'api', 'metrics'],
  registry: ['shared', 'oci', 'config', 'storage', 'metadata', 'metrics'],
  auth: ['shared', 'oci', 'config', 'metadata', 'federation', 'api', 'metrics'],
  events: ['shared', 'oci', 'config', 'metadata', 'net', 'jobs', 'registry', 'api', 'metrics'],
  // Push attestations and their policy (issue 18): hooks into registry/, used by http/ and app/; the
  // CLI imports its pure parts (verify.ts, policy.ts, statement.ts) for `berth verify`.
  attestations: ['shared', 'oci', 'config', 'metadata', 'registry', 'api', 'metrics'],
  replication: ['shared', 'oci', 'config', 'metadata', 'net', 'jobs', 'registry', 'remote', 'api', 'metrics'],
  sync: ['shared', 'oci', 'config', 'metadata', 'net', 'jobs', 'registry', 'remote', 'replication', 'federation', 'api', 'metrics'],
  // Operability (issue 14): probes, gauges, the audit export; used by http/ and app/.
  operations: ['shared', 'oci', 'config', 'metrics', 'storage', 'metadata', 'jobs', 'net', 'api'],
  // Lifecycle policies: builds on the registry (deletions, push hooks) and events (quota events);
  // from sync/ it uses only filters.ts (the tag-filter grammar and its one regex engine), from
  // federation/ only the claim-condition rule.
  lifecycle: ['shared', 'oci', 'config', 'metadata', 'jobs', 'registry', 'events', 'federation', 'sync', 'api', 'metrics'],
  console: ['shared', 'oci', 'config', 'metadata', 'net', 'auth', 'federation', 'registry', 'api', 'metrics'],
  cache: ['shared', 'oci', 'config', 'metadata', 'net', 'jobs', 'registry', 'remote', 'sync', 'api', 'metrics'],
  client: ['shared', 'oci', 'remote', 'api'],
  kube: ['shared', 'oci', 'remote', 'client', 'api', 'metrics'],
  http: [
    'shared',
    'oci',
    'config',
    'net',
    'auth',
    'federation',
    'registry',
    'events',
    'replication',
    'sync',
    'attestations',
    'console',
    'cache',
    'lifecycle',
    'operations',
    'api',
    'metrics',
  ],
  app: [
    'shared',
    'oci',
    'config',
    'net',
    'storage',
    'metadata',
    'jobs',
    'auth',
    'federation',
    'registry',
    'events',
    'replication',
    'sync',
    'attestations',
    'console',
    'cache',
    'lifecycle',
    'operations',
    'http',
    'api',
    'metrics',
  ],
  cli: ['shared', 'oci', 'config', 'app', 'client', 'remote', 'kube', 'api', 'storage', 'metadata', 'registry', 'attestations'],
  bin: ['shared', 'config', 'cli', 'kube'],
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'data/**', 'console/dist/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-undef': 'off', // TypeScript checks names
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Kysely's values load from its CommonJS build through one file (memory at start: see
    // src/metadata/kysely.ts); the two builds must never both load. Type imports are free.
    files: ['src/**/*.ts'],
    ignores: ['src/metadata/kysely.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'kysely', allowTypeImports: true, message: "import Kysely's values from src/metadata/kysely.ts (its CommonJS build, loaded once)" }],
        },
      ],
    },
  },
  {
    // The request path builds objects with Object.assign, or with literal keys before any spread, never
    // with a literal that starts with a spread (`{ ...a, k: v }`, `{ ...a, ...b }`). On Node 20's V8 such
    // a literal is a copy of the first object's shape with properties added after; those copies outlive
    // the young generation and pile up in the old one until a full collection. One such line in
    // respond.ts put ~1 KiB a request into the old generation: a full collection every 2-3 s under load
    // and the RSS peak with it (bench/notes.md, "Memory"). Measured over 3 million objects with 2 MiB
    // semi-spaces (node --max-semi-space-size=2 --trace-gc):
    // `{ ...a, b: 1 }` 39 full collections, `{ b: 1, ...a }` or `Object.assign({}, a, { b: 1 })` none.
    // A literal with a getter (`{ a, get b() { ... } }`) does the same (30), a class's getter does not.
    files: ['src/{http,auth,federation,shared,metrics,cache,registry,oci,storage}/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ObjectExpression[properties.length>1] > SpreadElement:first-child',
          message:
            'on the request path, build this with Object.assign({}, a, { k: v }) or put literal keys before the spread: an object literal that starts with a spread lands in the old generation on Node 20 (eslint.config.js)',
        },
        {
          selector: 'ObjectExpression > Property[kind=/^(get|set)$/]',
          message:
            'on the request path, put getters on a class, not on an object literal: each literal gets its own accessors and shape, which land in the old generation on Node 20 (eslint.config.js)',
        },
      ],
    },
  },
  {
    // Tests and benchmarks read JSON answers loosely.
    files: ['test/**/*.ts', 'bench/**/*.ts', 'src/**/*.test.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    plugins: { boundaries },
    settings: {
      'import/resolver': { typescript: { project: './tsconfig.json' } },
      'boundaries/include': ['src/**/*.ts'],
      'boundaries/elements': [...Object.keys(layers).map((type) => ({ type, pattern: `src/${type}/**`, partialMatch: false }))],
    },
    rules: {
      'boundaries/no-unknown-files': 'error',
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          message: '{{from.element.type}}/ may not import {{to.element.type}}/ (layering: eslint.config.js, docs/architecture.md)',
          policies: Object.entries(layers).map(([from, allow]) => ({
            from: { element: { type: from } },
            allow: { to: { element: { types: { anyOf: [from, ...allow] } } } },
          })),
        },
      ],
    },
  },
);
