import { z } from 'zod';
import { duration } from '../fields.js';

export const lifecycleSection = () =>
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          'Run the lifecycle jobs (retention runs, usage refreshes) in this process. Policies are enforced on pushes either way; replicas may leave the jobs to some of them.',
        ),
      pollIntervalMs: duration('How often this process looks for due lifecycle runs and schedules (a request for a run wakes it at once).', 30_000),
      leaseMs: duration("How long a claimed run stays claimed without a heartbeat; another replica resumes a crashed one's run after this.", 60_000),
      policyCacheMs: duration(
        'Policies are read from the database at most this often on the push path (a change made on this replica applies at once, on others within this).',
        2000,
      ),
      runRetentionMs: duration('Finished runs (and their reports) are kept this long.', 30 * 24 * 3600 * 1000),
      lastPull: z
        .object({
          enabled: z.boolean().default(true).describe('Track when each manifest was last pulled (for `notPulledFor` retention conditions).'),
          flushIntervalMs: duration(
            'Pulls are buffered in memory and written in one batch this often (and at shutdown): a pull never waits for a write.',
            5000,
          ),
          maxBuffered: z
            .number()
            .int()
            .min(100)
            .default(100_000)
            .describe('Distinct manifests buffered before a write is started early (one entry per manifest, whatever the number of pulls).'),
        })
        .default({})
        .describe('Last-pull tracking.'),
      retention: z
        .object({
          minimumAgeMs: z
            .number()
            .int()
            .min(0)
            .default(3600 * 1000)
            .describe('Retention never deletes what was pushed more recently than this, whatever a rule says (a rule may ask for more, not less).'),
          pushMarginMs: z
            .number()
            .int()
            .min(0)
            .default(60_000)
            .describe(
              'A run deletes an image only if nothing was pushed to it since this long before its plan was made: the clock skew between replicas plus the longest push transaction.',
            ),
          previewLimit: z
            .number()
            .int()
            .min(1)
            .max(100_000)
            .default(1000)
            .describe('Most actions one preview lists (the API and CLI page on from where it stopped).'),
        })
        .default({})
        .describe('Retention runs.'),
      usage: z
        .object({
          refreshIntervalMs: duration('How often storage usage per repository (and per quota) is computed again from the metadata.', 10 * 60 * 1000),
        })
        .default({})
        .describe('Storage usage accounting.'),
    })
    .default({})
    .describe('Lifecycle policies (docs/lifecycle.md): retention, tag immutability, quotas; managed through /api/v1/lifecycle and `berth apply`.');
