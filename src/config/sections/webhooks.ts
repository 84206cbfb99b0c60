import { z } from 'zod';
import { duration } from '../fields.js';

const webhooksSchema = () =>
  z
    .object({
      dispatch: z
        .boolean()
        .default(true)
        .describe(
          'Deliver webhooks from this process. Events are recorded by every process either way; replicas sharing a database may leave delivery to some of them (at least one must dispatch).',
        ),
      timeoutMs: duration(
        'Longest one delivery attempt may take, redirects included: connecting, the response headers and the first 1 KiB of the response body.',
        10_000,
      ),
      maxAttempts: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(10)
        .describe('Attempts per delivery before it is marked failed (a failed delivery can be redelivered by hand).'),
      backoff: z
        .object({
          baseMs: duration(
            'Upper bound of the wait after the first failed attempt; doubled after each further failure (full jitter: the wait is random between 0 and the bound).',
            5000,
          ),
          maxMs: duration('Largest upper bound of the wait between attempts.', 15 * 60 * 1000),
        })
        .default({})
        .describe('Retry delays: exponential backoff with full jitter.'),
      maxRedirects: z
        .number()
        .int()
        .min(0)
        .max(10)
        .default(3)
        .describe(
          'Redirects (301, 302, 307, 308; the POST is repeated) followed per attempt; each hop is checked by the egress policy, and custom headers are not sent to another origin. 0: never follow.',
        ),
      concurrency: z.number().int().min(1).max(256).default(8).describe('Deliveries in flight at once in this process.'),
      pollIntervalMs: duration('How often the dispatcher looks for work committed by other replicas (events from this process wake it at once).', 2000),
      retentionMs: duration('Events, deliveries and attempts older than this are deleted once nothing is pending for them.', 30 * 24 * 3600 * 1000),
    })
    .default({})
    .describe('Webhook deliveries: the dispatcher that sends the events written with every push and delete (docs/webhooks.md).');

export const webhooksSection = webhooksSchema;
