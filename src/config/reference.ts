/**
 * Renders the configuration reference (docs/configuration.md) from the schema's own descriptions,
 * so the docs cannot drift from the code (a unit test compares them).
 */
import { z } from 'zod';
import { configSchema } from './schema.js';

interface Row {
  key: string;
  type: string;
  fallback: string;
  description: string;
}

function unwrap(schema: z.ZodTypeAny): { inner: z.ZodTypeAny; fallback: unknown; optional: boolean } {
  let inner = schema;
  let fallback: unknown;
  let optional = false;
  for (;;) {
    if (inner instanceof z.ZodDefault) {
      fallback = inner._def.defaultValue();
      inner = inner._def.innerType;
    } else if (inner instanceof z.ZodOptional) {
      optional = true;
      inner = inner._def.innerType;
    } else if (inner instanceof z.ZodEffects) {
      // A section with a cross-field `.refine` check: document the object inside.
      inner = inner._def.schema;
    } else return { inner, fallback, optional };
  }
}

function typeName(schema: z.ZodTypeAny): string {
  if (schema instanceof z.ZodString) return 'string';
  if (schema instanceof z.ZodNumber) return 'integer';
  if (schema instanceof z.ZodBoolean) return 'boolean';
  if (schema instanceof z.ZodEnum) return (schema.options as string[]).map((o) => `\`${o}\``).join(' \\| ');
  if (schema instanceof z.ZodLiteral) return `\`${String(schema.value)}\``;
  if (schema instanceof z.ZodObject) return 'object';
  if (schema instanceof z.ZodArray) return `list of ${typeName(schema.element as z.ZodTypeAny)}`;
  if (schema instanceof z.ZodRecord) return 'map';
  return 'value';
}

function rows(schema: z.ZodObject<z.ZodRawShape>, prefix: string): Row[] {
  const out: Row[] = [];
  for (const [key, field] of Object.entries(schema.shape) as Array<[string, z.ZodTypeAny]>) {
    const { inner, fallback, optional } = unwrap(field);
    const path = prefix ? `${prefix}.${key}` : key;
    const isObject = inner instanceof z.ZodObject;
    out.push({
      key: path,
      type: typeName(inner),
      fallback: isObject || fallback === undefined ? (optional ? '(unset)' : '') : `\`${JSON.stringify(fallback)}\``,
      description: field.description ?? inner.description ?? '',
    });
    if (isObject) out.push(...rows(inner as z.ZodObject<z.ZodRawShape>, path));
    if (inner instanceof z.ZodArray && inner.element instanceof z.ZodObject) out.push(...rows(inner.element as z.ZodObject<z.ZodRawShape>, `${path}[]`));
  }
  return out;
}

export function configReference(): string {
  const lines = [
    '# Configuration reference',
    '',
    '<!-- Generated from src/config/schema.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    'Berth reads, in increasing precedence: built-in defaults, a YAML or JSON file (`--config FILE` or',
    '`BERTH_CONFIG`), environment variables (`BERTH_ADDR`, `BERTH_DATA`, `BERTH_LOG_LEVEL`, `BERTH_METADATA_URL`), and command-line',
    'flags. Unknown keys are an error, so a typo fails at start instead of being ignored. Sizes are bytes,',
    'durations milliseconds.',
    '',
    '| key | type | default | description |',
    '| --- | --- | --- | --- |',
    ...rows(configSchema(), '').map((r) => `| \`${r.key}\` | ${r.type} | ${r.fallback} | ${r.description.replace(/\|/g, '\\|')} |`),
    '',
    'Example (`berth.yaml`):',
    '',
    '```yaml',
    'addr: 0.0.0.0:5000',
    'dataDir: /var/lib/berth',
    'tls:',
    '  cert: /etc/berth/tls.crt',
    '  key: /etc/berth/tls.key',
    'limits:',
    '  maxManifestBytes: 4194304',
    'gc:',
    '  graceMs: 3600000',
    '```',
    '',
  ];
  return lines.join('\n');
}
