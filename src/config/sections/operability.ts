/**
 * Operability: how Berth is watched. `metrics` (Prometheus), `tracing` (OpenTelemetry), `audit`
 * (what is audited beyond management changes, and where the audit log is exported) and the log
 * format. See docs/operations.md.
 */
import { z } from 'zod';
import { duration } from '../fields.js';

const hostPort = /^(?:\[[^\]]+\]|[^:\s]*):\d{1,5}$/;

/** How log lines are written. */
export const logFormatField = () =>
  z
    .enum(['auto', 'json', 'pretty'])
    .default('auto')
    .describe(
      'Log line format: `json` (one object a line), `pretty` (one readable line each), or `auto`: pretty when stdout is a terminal, JSON otherwise. Env BERTH_LOG_FORMAT.',
    );

export const metricsSection = () =>
  z
    .object({
      enabled: z.boolean().default(true).describe('Serve `GET /metrics` (Prometheus text format).'),
      addr: z
        .string()
        .regex(hostPort, 'expected HOST:PORT')
        .optional()
        .describe(
          'Serve `/metrics`, `/healthz` and `/readyz` on this separate HOST:PORT (plain HTTP) instead of the main listener, for example to keep them off the public address. Unset: on the main listener.',
        ),
      tokenFile: z
        .string()
        .optional()
        .describe('A file holding a bearer token that scrapes must send (`Authorization: Bearer <token>`); read at start. Unset: `/metrics` needs no token.'),
      processMetrics: z.boolean().default(true).describe("Include Node's process metrics (CPU, memory, event-loop lag, garbage collection)."),
    })
    .default({})
    .describe('Prometheus metrics (docs/operations.md lists the families).');

export const tracingSection = () =>
  z
    .object({
      endpoint: z
        .string()
        .url()
        .optional()
        .describe(
          'OTLP/HTTP traces URL of a collector (for example `http://otel-collector:4318/v1/traces`). Tracing is off, and the OpenTelemetry SDK never loaded, unless this is set.',
        ),
      headers: z.record(z.string()).default({}).describe('Headers sent with every export (an API key header, say).'),
      sampleRatio: z
        .number()
        .min(0)
        .max(1)
        .default(0.1)
        .describe(
          'Share of requests traced when the caller sent no sampling decision; a `traceparent` from the caller is followed (sampled or not). 1 traces everything.',
        ),
      maxPerSecond: z
        .number()
        .int()
        .min(0)
        .default(10)
        .describe(
          'At most this many new traces a second on this replica (requests, including those whose caller asked for tracing, and background jobs), so tracing costs little under any load; 0: no limit.',
        ),
      serviceName: z.string().min(1).default('berth').describe('`service.name` of the spans.'),
      exportTimeoutMs: duration('Longest one export request may take.', 10_000),
    })
    .default({})
    .describe('OpenTelemetry traces: spans for requests, storage and database operations, token issuance, webhook deliveries and sync copies.');

const sinkName = () =>
  z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes, at most 63')
    .describe('Names the sink in metrics and logs; unique. Renaming a sink starts it afresh.');

const cloudEventsSink = () =>
  z
    .object({
      name: sinkName(),
      type: z.literal('cloudevents'),
      url: z.string().url().describe('Where batches are POSTed (`application/cloudevents-batch+json`); any 2xx acknowledges the batch.'),
      headers: z.record(z.string()).default({}).describe('Headers sent with every batch (an authorization header, say).'),
      caFile: z.string().optional().describe('PEM CA bundle that replaces the default trust store for an https URL.'),
      timeoutMs: duration('Longest one batch may take to be acknowledged.', 10_000),
    })
    .strict();

const syslogSink = () =>
  z
    .object({
      name: sinkName(),
      type: z.literal('syslog'),
      address: z.string().regex(hostPort, 'expected HOST:PORT').describe('The syslog receiver (RFC 5424 messages, octet-counted framing over TCP, RFC 6587).'),
      tls: z.boolean().default(false).describe('Speak TLS (RFC 5425), checking the receiver certificate.'),
      caFile: z.string().optional().describe('PEM CA bundle that replaces the default trust store (with `tls`).'),
      serverName: z.string().optional().describe('The name the certificate must carry (with `tls`); default: the host of `address`.'),
      facility: z.number().int().min(0).max(23).default(13).describe('Syslog facility of every message (13: log audit).'),
      timeoutMs: duration('Longest connecting and writing one batch may take.', 10_000),
    })
    .strict();

export const auditSection = () =>
  z
    .object({
      pulls: z
        .enum(['off', 'sampled', 'full'])
        .default('off')
        .describe(
          'Audit manifest pulls: `full` writes an entry for every manifest GET (a database write on the hottest path), `sampled` for a share of them (`pullSampleRatio`), `off` none. Pushes and deletes are always audited.',
        ),
      pullSampleRatio: z.number().gt(0).max(1).default(0.01).describe('Share of manifest pulls audited when `pulls` is `sampled`.'),
      export: z
        .object({
          sinks: z
            .array(z.discriminatedUnion('type', [cloudEventsSink(), syslogSink()]))
            .default([])
            .describe(
              'Receivers of every audit entry: `cloudevents` (HTTP) or `syslog` (TCP/TLS). Each entry is queued for each sink in the transaction that records it and sent at least once, in batches, with retries until the receiver takes it.',
            ),
          batchSize: z.number().int().min(1).max(1000).default(100).describe('Entries per batch (one HTTP request, or one connection for syslog).'),
          pollIntervalMs: duration('How often the exporter looks for entries written by other replicas (this process wakes it at once).', 2000),
          backoff: z
            .object({
              baseMs: duration('Upper bound of the wait after a failed batch; doubled after each further failure (full jitter).', 1000),
              maxMs: duration('Largest upper bound of the wait between attempts.', 5 * 60 * 1000),
            })
            .default({})
            .describe('Retry delays while a receiver is down.'),
        })
        .default({})
        .superRefine((value, ctx) => {
          const seen = new Set<string>();
          for (const sink of value.sinks) {
            if (seen.has(sink.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `sink name ${sink.name} is used twice` });
            seen.add(sink.name);
          }
        })
        .describe('Exporting the audit log to a SIEM or log pipeline, through a durable outbox: nothing is lost while a receiver is down.'),
    })
    .default({})
    .describe('The audit log: management changes, token issuance and refusals, failed logins, pushes and deletes are always recorded (docs/operations.md).');
