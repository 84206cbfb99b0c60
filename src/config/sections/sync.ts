import { z } from 'zod';
import { duration } from '../fields.js';

export const syncSection = () =>
  z
    .object({
      enabled: z
        .boolean()
        .default(true)
        .describe(
          'Run the sync worker (reconciles and copies) in this process. The webhook receiver queues work either way, so replicas may leave the copying to some of them.',
        ),
      workerIntervalMs: duration('How often the worker looks for due reconciles and queued images (a webhook wakes it at once).', 2000),
      queueConcurrency: z.number().int().min(1).max(64).default(4).describe('Images copied at the same time by this process, across all rules.'),
      leaseMs: duration(
        "How long a claimed image or reconcile stays claimed without a heartbeat; another replica takes over a crashed one's work after this.",
        60_000,
      ),
      reconcileIntervalMs: z
        .number()
        .int()
        .min(0)
        .default(3600 * 1000)
        .describe('Webhook rules without a poll interval are reconciled this often anyway, to catch notifications that were lost; 0 turns this off.'),
      minPollIntervalMs: duration("Lower bound on a rule's poll interval, to spare the source registry.", 30_000),
      receiverMaxBodyBytes: z
        .number()
        .int()
        .positive()
        .default(1024 * 1024)
        .describe('Largest webhook delivery the receiver reads; larger ones get 413.'),
      signatureToleranceSeconds: z
        .number()
        .int()
        .min(1)
        .max(3600)
        .default(300)
        .describe('Signed deliveries whose `Berth-Signature` timestamp is further than this from the clock are refused (replay protection).'),
      notificationSettleMs: duration(
        "A notification naming a digest the source does not show under the tag yet (CNCF Distribution sends its event before it moves the tag) is checked again every second for this long; after that the source's current state is the answer.",
        30_000,
      ),
      dedupeWindowMs: duration(
        'Delivery event ids are remembered this long: a delivery repeated within it is acknowledged and not queued again.',
        24 * 3600 * 1000,
      ),
      retry: z
        .object({
          initialDelayMs: duration('Wait after the first failed copy of an image; doubled after each further failure.', 5000),
          maxDelayMs: duration('Longest wait between attempts (within an attempt, the source client already honours `429` + `Retry-After`).', 10 * 60 * 1000),
          maxAttempts: z
            .number()
            .int()
            .min(1)
            .max(100)
            .default(8)
            .describe('Attempts per queued image; after the last, the error stays in its status until the next reconcile queues it again.'),
        })
        .default({})
        .describe('Retries of failed copies.'),
      defaultLimits: z
        .object({
          requestsPerSecond: z
            .number()
            .positive()
            .default(50)
            .describe(
              "Requests per second to one rule's source, on average (bursts of one second's worth; one multi-platform image with its referrers takes 15-30 requests).",
            ),
          concurrency: z.number().int().positive().default(4).describe("Requests in flight to one rule's source."),
        })
        .default({})
        .describe('Per-source limits for rules that set none.'),
    })
    .default({})
    .describe('Selective sync from other registries (docs/sync.md): rules are managed through /api/v1/sync/rules and `berth sync`.');
