/**
 * The configuration schema: one place, every field described. `docs/configuration.md` is generated
 * from these descriptions (`npm run docs:config`). Sizes are bytes, durations milliseconds.
 *
 * The server's own fields come first, then one section per capability, each in
 * `sections/<name>.ts`: a feature adds its section file and one line here.
 *
 * Built on demand, not at import: what Berth keeps is the parsed configuration, and the schema (its
 * ~2 MiB of zod objects and descriptions) is garbage once `load.ts` has parsed with it.
 */
import { z } from 'zod';
import { attestationsSection } from './sections/attestations.js';
import { authSection } from './sections/auth.js';
import { consoleSection } from './sections/console.js';
import { cacheSection } from './sections/cache.js';
import { egressSection } from './sections/egress.js';
import { federationSection } from './sections/federation.js';
import { gcSection } from './sections/gc.js';
import { httpSection } from './sections/http.js';
import { importSection } from './sections/import.js';
import { lifecycleSection } from './sections/lifecycle.js';
import { limitsSection } from './sections/limits.js';
import { metadataSection } from './sections/metadata.js';
import { auditSection, logFormatField, metricsSection, tracingSection } from './sections/operability.js';
import { registrySection } from './sections/registry.js';
import { retentionSection } from './sections/retention.js';
import { secretsSection } from './sections/secrets.js';
import { serverFields } from './sections/server.js';
import { storageSection } from './sections/storage.js';
import { syncSection } from './sections/sync.js';
import { webhooksSection } from './sections/webhooks.js';

export const configSchema = () =>
  z
    .object({
      ...serverFields(),
      http: httpSection(),
      logFormat: logFormatField(),
      storage: storageSection(),
      metadata: metadataSection(),
      limits: limitsSection(),
      registry: registrySection(),
      auth: authSection(),
      federation: federationSection(),
      webhooks: webhooksSection(),
      egress: egressSection(),
      sync: syncSection(),
      gc: gcSection(),
      import: importSection(),
      retention: retentionSection(),
      secrets: secretsSection(),
      attestations: attestationsSection(),
      console: consoleSection(),
      cache: cacheSection(),
      lifecycle: lifecycleSection(),
      metrics: metricsSection(),
      tracing: tracingSection(),
      audit: auditSection(),
    })
    .strict();

export type Config = z.infer<ReturnType<typeof configSchema>>;
export type ConfigInput = z.input<ReturnType<typeof configSchema>>;
