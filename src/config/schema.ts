/**
 * The configuration schema: one place, every field described. `docs/configuration.md` is generated
 * from these descriptions (`npm run docs:config`). Sizes are bytes, durations milliseconds.
 */
import { z } from 'zod';

const duration = (description: string, fallback: number) => z.number().int().positive().default(fallback).describe(description);

const lifetime = z
  .object({
    accessMs: duration('Access token lifetime.', 5 * 60 * 1000),
    refreshMs: duration('Refresh token lifetime.', 3 * 3600 * 1000),
  })
  .default({});

const authSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Require tokens on the registry API. Turning it off makes every repository public and writable; Berth warns at start. Env BERTH_AUTH_ENABLED.'),
    service: z.string().min(1).default('berth').describe('The token service name: `service` in challenges and `aud` of access tokens.'),
    issuer: z.string().min(1).default('berth').describe('`iss` of the tokens Berth signs.'),
    publicUrl: z
      .string()
      .url()
      .optional()
      .describe("Base URL clients reach Berth at, used for the token realm in challenges; default: from the request's Host header."),
    lifetimes: z
      .object({ user: lifetime, admin: lifetime, service: lifetime, token: lifetime })
      .default({})
      .describe('Token lifetimes per principal kind (user, admin user, service principal, repository-scoped token).'),
    adminUser: z
      .object({
        enabled: z.boolean().default(false).describe('Allow the admin user (one name, two passwords; owner rights).'),
        username: z.string().min(1).default('admin').describe("The admin user's login name."),
      })
      .default({})
      .describe('The admin user, off by default as in ACR.'),
    bootstrap: z
      .object({
        user: z.string().min(1).optional().describe('Owner created on first start when no principal exists. Env BERTH_BOOTSTRAP_USER.'),
        password: z
          .string()
          .min(12)
          .optional()
          .describe('Its password (min 12 characters); when unset one is generated and printed once. Env BERTH_BOOTSTRAP_PASSWORD.'),
      })
      .default({})
      .describe('The first owner credential.'),
    throttle: z
      .object({
        maxFailures: z.number().int().positive().default(5).describe('Failed logins allowed per principal and per client address within the window.'),
        windowMs: duration('Window for counting failed logins; further attempts get 429 until it passes.', 15 * 60 * 1000),
      })
      .default({})
      .describe('Failed-login throttling.'),
  })
  .default({})
  .describe('The token service (Docker/OCI bearer-token auth).');

const importSourceSchema = z
  .object({
    registry: z.string().min(1).describe('The source registry as requests name it, HOST[:PORT] (`docker.io` for Docker Hub).'),
    url: z.string().url().optional().describe('Base URL to reach it at, when not `https://HOST` (or `http://` for loopback).'),
    username: z.string().min(1).optional().describe('Basic / Docker token-auth user name; with `passwordFile`.'),
    passwordFile: z.string().optional().describe('File holding the password (read at each use, so it can be rotated).'),
    clientId: z.string().min(1).optional().describe("Federation into another Berth: the service principal's client id; with `tokenFile`."),
    tokenFile: z
      .string()
      .optional()
      .describe('Federation: file holding the OIDC token (e.g. a projected Kubernetes service-account token), read afresh for every login.'),
    requestsPerSecond: z.number().positive().optional().describe('Requests per second to this source; default `import.defaults.requestsPerSecond`.'),
    concurrency: z.number().int().positive().optional().describe('Requests in flight to this source; default `import.defaults.concurrency`.'),
  })
  .strict()
  .refine((s) => (s.username === undefined) === (s.passwordFile === undefined), 'username and passwordFile go together')
  .refine((s) => (s.clientId === undefined) === (s.tokenFile === undefined), 'clientId and tokenFile go together')
  .refine((s) => s.username === undefined || s.clientId === undefined, 'give username/passwordFile or clientId/tokenFile, not both');

const importSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Run import jobs in this process. Jobs are accepted either way; replicas sharing a database may leave running them to some of them.'),
    concurrency: z.number().int().min(1).max(64).default(2).describe('Import jobs this process runs at once.'),
    blobConcurrency: z.number().int().min(1).max(64).default(4).describe('Blobs one job transfers at once.'),
    pollIntervalMs: duration('How often the runner looks for jobs queued by other replicas (a job accepted by this process starts at once).', 2000),
    leaseMs: duration('A running job not heard from for this long (its process died) is taken over by another runner, which resumes it.', 60_000),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(20)
      .default(3)
      .describe('Runs per job when the source is unreachable or overloaded, before it is marked failed (`POST /api/v1/imports/{id}/retry` starts it again).'),
    retryDelayMs: duration('Wait before the first automatic retry; doubled after each further failure.', 10_000),
    credentialRetentionMs: duration(
      'Source credentials given with a request are forgotten this long after the job ended (at once when it succeeds); a retry after that needs them again.',
      24 * 3600 * 1000,
    ),
    retentionMs: duration('Finished jobs are deleted after this long.', 30 * 24 * 3600 * 1000),
    defaults: z
      .object({
        requestsPerSecond: z
          .number()
          .positive()
          .default(100)
          .describe("Requests per second to one source, on average; bursts of up to one second's worth go at once."),
        concurrency: z.number().int().positive().default(8).describe('Requests in flight to one source (blob transfers hold theirs until done).'),
        retries: z.number().int().min(1).max(10).default(4).describe('Attempts per request on connection errors, 5xx and 429 (after Retry-After).'),
        headersTimeoutMs: duration("Longest wait for a source's response headers.", 30_000),
        bodyTimeoutMs: duration('Longest pause between two chunks of a response body.', 60_000),
      })
      .default({})
      .describe('Per-source request limits and retries.'),
    sources: z
      .array(importSourceSchema)
      .default([])
      .describe(
        'Credentials and limits per source registry. A request without credentials for a listed registry uses these: anyone allowed to import can use them, so list only sources all importers may read.',
      ),
  })
  .default({})
  .describe('Server-side import (`POST /api/v1/import`, `berth import`): digest-preserving copies from other registries, as jobs (docs/import.md).');

const issuerSchema = z
  .object({
    issuer: z.string().url().describe('The issuer URL, exactly as tokens carry it in `iss`.'),
    jwksUri: z.string().url().optional().describe('Fetch keys from here instead of OIDC discovery (`/.well-known/openid-configuration`).'),
    jwks: z
      .object({ keys: z.array(z.record(z.unknown())) })
      .optional()
      .describe('A static JWKS, for private clusters whose issuer Berth cannot reach (`kubectl get --raw /openid/v1/jwks`).'),
    jwksFile: z.string().optional().describe('A static JWKS read from this file (same use as `jwks`).'),
    caFile: z.string().optional().describe("PEM CA bundle to trust for this issuer's HTTPS endpoints."),
    allowInsecureLoopback: z
      .boolean()
      .default(false)
      .describe('Allow plain HTTP for this issuer; only ever honoured for loopback addresses (tests, local clusters).'),
    maxTokenAgeMs: z.number().int().positive().optional().describe('Override `federation.maxTokenAgeMs` for this issuer.'),
  })
  .strict();

const federationSchema = z
  .object({
    issuers: z
      .array(issuerSchema)
      .default([])
      .describe('Settings for OIDC issuers that need them. Any HTTPS issuer a federated credential names is trusted through discovery without an entry here.'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(60).describe('Allowed clock difference when checking `exp`, `nbf` and `iat` of OIDC tokens.'),
    maxTokenAgeMs: duration('OIDC tokens issued (`iat`) longer ago than this are refused, however long their `exp`.', 3600 * 1000),
    lifetimeCapMs: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('Registry tokens bought with an OIDC token live at most this long. Unset: never longer than the OIDC token itself.'),
    discoveryTimeoutMs: duration("Timeout for fetching an issuer's discovery document and keys.", 5000),
    keyRefetchCooldownMs: z
      .number()
      .int()
      .min(0)
      .default(30_000)
      .describe("A token with an unknown `kid` makes Berth refetch the issuer's keys at most this often (issuer key rotation)."),
  })
  .default({})
  .describe('Workload identity federation: trust OIDC tokens from GitHub Actions, Kubernetes, GitLab or any issuer.');

const webhooksSchema = z
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

export const configSchema = z
  .object({
    addr: z.string().default('127.0.0.1:5000').describe('Address to listen on, HOST:PORT (port 0 picks a free port). Env BERTH_ADDR, flag --addr.'),
    dataDir: z.string().default('./data').describe('Directory for blobs and the SQLite metadata database. Env BERTH_DATA, flag --data.'),
    logLevel: z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .default('info')
      .describe('Log level; `debug` logs every request. Env BERTH_LOG_LEVEL.'),
    tls: z
      .object({
        cert: z.string().describe('PEM certificate chain file.'),
        key: z.string().describe('PEM private key file.'),
      })
      .optional()
      .describe('Serve HTTPS with this certificate. Without it Berth serves plain HTTP (fine on loopback or behind a TLS proxy).'),
    storage: z
      .object({
        driver: z
          .enum(['filesystem', 's3'])
          .default('filesystem')
          .describe('Blob storage driver: `filesystem` (one machine) or `s3` (any S3-compatible service; for several replicas).'),
        root: z.string().optional().describe('Root directory for the filesystem driver; default `<dataDir>/storage`.'),
        s3: z
          .object({
            bucket: z.string().min(3).describe('Bucket (must exist).'),
            prefix: z.string().default('').describe('Key prefix inside the bucket, e.g. `berth/`; lets several registries share a bucket.'),
            region: z.string().default('us-east-1').describe('Region; any value for services that ignore it.'),
            endpoint: z.string().url().optional().describe('Endpoint URL for S3-compatible services (Ceph RGW, MinIO, R2); default AWS.'),
            forcePathStyle: z.boolean().default(false).describe('Path-style addressing (`endpoint/bucket/key`), as most self-hosted services need.'),
            accessKeyId: z
              .string()
              .optional()
              .describe(
                "Static access key id. Without it the AWS SDK's default chain is used (env `AWS_ACCESS_KEY_ID`, web identity, instance role): keyless on AWS.",
              ),
            secretAccessKeyFile: z
              .string()
              .optional()
              .describe(
                'File holding the secret access key for `accessKeyId` (env `AWS_SECRET_ACCESS_KEY` also works); never put the secret in the config file.',
              ),
            redirect: z.boolean().default(false).describe('Answer blob GETs with a 307 to a presigned URL, so bytes flow from storage to the client directly.'),
            redirectTtlMs: duration('Lifetime of presigned blob URLs.', 20 * 60 * 1000),
            partSizeBytes: z
              .number()
              .int()
              .min(5 * 1024 * 1024)
              .default(16 * 1024 * 1024)
              .describe('Multipart part size for uploads and copies (S3 requires at least 5 MiB).'),
          })
          .optional()
          .describe('Settings of the `s3` driver.'),
      })
      .default({})
      .refine((s) => s.driver !== 's3' || s.s3 !== undefined, { message: 'storage.driver s3 needs the storage.s3 section (at least a bucket)', path: ['s3'] })
      .describe('Where blob bytes live.'),
    metadata: z
      .object({
        driver: z
          .enum(['sqlite', 'postgres'])
          .default('sqlite')
          .describe('Metadata database: `sqlite` (one process) or `postgres` (shared by several replicas).'),
        path: z.string().optional().describe('SQLite database file; default `<dataDir>/metadata.db`.'),
        url: z
          .string()
          .optional()
          .describe(
            'PostgreSQL connection URL (`postgres://user@host:5432/db`). Env BERTH_METADATA_URL. Put the password in `passwordFile` or env PGPASSWORD, not in the URL.',
          ),
        passwordFile: z.string().optional().describe('File holding the PostgreSQL password.'),
        poolSize: z.number().int().min(1).max(200).default(10).describe('PostgreSQL connections per process.'),
      })
      .default({})
      .refine((m) => m.driver !== 'postgres' || m.url !== undefined, {
        message: 'metadata.driver postgres needs metadata.url (or env BERTH_METADATA_URL)',
        path: ['url'],
      })
      .describe('Where repositories, tags, manifests and upload sessions are recorded.'),
    limits: z
      .object({
        maxManifestBytes: z
          .number()
          .int()
          .positive()
          .default(4 * 1024 * 1024)
          .describe('Largest manifest accepted; larger ones get 413 SIZE_INVALID.'),
        uploadTtlMs: duration('An upload session idle this long is abandoned and removed.', 24 * 3600 * 1000),
        uploadSweepIntervalMs: duration('How often the server removes abandoned upload sessions.', 10 * 60 * 1000),
      })
      .default({})
      .describe('Bounds on what clients may send and how long unfinished work is kept.'),
    auth: authSchema,
    federation: federationSchema,
    webhooks: webhooksSchema,
    egress: z
      .object({
        allowPrivateNetworks: z
          .boolean()
          .default(false)
          .describe('Allow outbound requests (webhook deliveries, import and sync sources) to private, loopback, link-local and other non-public addresses.'),
        allow: z
          .array(z.string().min(1))
          .default([])
          .describe('Destinations allowed although non-public: CIDRs (`10.1.0.0/16`, `::1/128`), host names (`registry.internal`) or `host:port`.'),
      })
      .default({})
      .describe(
        "Which addresses Berth may connect to on a user's behalf. Checked on every connection, after DNS resolution and on every redirect hop, so a webhook or sync URL cannot probe the internal network.",
      ),
    sync: z
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
      .describe('Selective sync from other registries (docs/sync.md): rules are managed through /api/v1/sync/rules and `berth sync`.'),
    gc: z
      .object({
        graceMs: duration('`berth gc` keeps unreferenced blobs pushed more recently than this.', 3600 * 1000),
      })
      .default({})
      .describe('Garbage collection (`berth gc`).'),
    import: importSchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
