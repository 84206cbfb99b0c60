/**
 * `berth webhook …`: webhook subscriptions of a running registry through /api/v1/webhooks (owners
 * only; docs/webhooks.md). Tables for people, the API's JSON with `--json`. The signing secret is
 * printed once, on stdout, with a warning on stderr; header values and the URL's query values are
 * never shown again.
 */
import { urls } from '../api/urls.js';
import type { DeliveryDetailView, DeliveryView, WebhookView } from '../api/webhooks.js';
import { AdminError, apiCall, connectOwner, type ConnectionOptions, type Session } from './admin-client.js';
import { print, printJson, table, warnSecretShownOnce, type OutputOptions } from './admin.js';

export type WebhookCommandOptions = ConnectionOptions & OutputOptions;

/** The body of POST /webhooks (and, all optional, of PATCH /webhooks/{name}). */
export interface WebhookBody {
  name?: string;
  url?: string;
  events?: string[];
  filters?: string[];
  headers?: Record<string, string>;
  secret?: string;
  format?: string;
  enabled?: boolean;
}

/** A client for /api/v1/webhooks holding an owner's access token. */
export class WebhookClient {
  constructor(private readonly session: Session & { accessToken: string }) {}

  list = (): Promise<{ webhooks: WebhookView[] }> => this.call('GET', urls.api.webhooks());
  create = (body: WebhookBody): Promise<{ webhook: WebhookView; secret: string }> => this.call('POST', urls.api.webhooks(), body);
  get = (ref: string): Promise<WebhookView> => this.call('GET', urls.api.webhook(ref));
  update = (ref: string, body: WebhookBody): Promise<WebhookView> => this.call('PATCH', urls.api.webhook(ref), body);
  remove = async (ref: string): Promise<void> => this.call('DELETE', urls.api.webhook(ref));
  rotateSecret = (ref: string, body: { secret?: string; overlapMs?: number }): Promise<{ webhook: WebhookView; secret: string }> =>
    this.call('POST', urls.api.webhookSecret(ref), body);
  ping = (ref: string): Promise<{ delivery: DeliveryView }> => this.call('POST', urls.api.webhookPing(ref), {});
  deliveries = (ref: string, query: { status?: string | undefined; limit?: number | undefined }): Promise<{ deliveries: DeliveryView[] }> =>
    this.call('GET', urls.api.webhookDeliveries(ref, query));
  delivery = (ref: string, id: string): Promise<DeliveryDetailView> => this.call('GET', urls.api.webhookDelivery(ref, id));
  redeliver = (ref: string, id: string): Promise<{ delivery: DeliveryView }> => this.call('POST', urls.api.webhookRedeliver(ref, id), {});

  private call<T>(method: string, apiPath: string, body?: unknown): Promise<T> {
    const { registry } = this.session;
    return apiCall(this.session, method, apiPath, body, {
      ownerOnly: true,
      explain: ({ status, code }) => (status === 404 && code === 'UNSUPPORTED' ? `${registry} has no webhook API: is it an older Berth?` : undefined),
    });
  }
}

export async function connectWebhooks(options: ConnectionOptions, io: { readStdin?: () => Promise<string> } = {}): Promise<WebhookClient> {
  return new WebhookClient(await connectOwner(options, io));
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface WebhookSettingOptions {
  url?: string | undefined;
  event?: string[] | undefined;
  filter?: string[] | undefined;
  header?: string[] | undefined;
  format?: string | undefined;
}

export async function webhookCreate(
  name: string,
  options: WebhookCommandOptions & WebhookSettingOptions & { disabled?: boolean | undefined; secretStdin?: boolean | undefined },
): Promise<void> {
  if (options.url === undefined) throw new AdminError('--url is required: where to send the events');
  const secret = await secretFromStdin(options);
  const body: WebhookBody = { name, ...settings(options), ...(options.disabled ? { enabled: false } : {}), ...(secret !== undefined ? { secret } : {}) };
  const client = await connectWebhooks(options);
  const created = await client.create(body);
  if (options.json) {
    printJson(created);
  } else {
    print(`created webhook ${created.webhook.name} (id ${created.webhook.id})`);
    print(describe(created.webhook));
    print(`secret: ${created.secret}`);
  }
  warnSecretShownOnce();
}

export async function webhookList(options: WebhookCommandOptions): Promise<void> {
  const client = await connectWebhooks(options);
  const { webhooks } = await client.list();
  if (options.json) return printJson({ webhooks });
  if (webhooks.length === 0) return print('no webhooks');
  print(
    table([
      ['NAME', 'STATUS', 'EVENTS', 'FILTERS', 'FORMAT', 'URL'],
      ...webhooks.map((w) => [w.name, w.enabled ? 'enabled' : 'disabled', w.events.join(','), w.filters.join(' ') || '*', w.format, w.url]),
    ]),
  );
}

export async function webhookShow(ref: string, options: WebhookCommandOptions): Promise<void> {
  const client = await connectWebhooks(options);
  const webhook = await client.get(ref);
  if (options.json) return printJson(webhook);
  print(describe(webhook));
}

export async function webhookUpdate(
  ref: string,
  options: WebhookCommandOptions &
    WebhookSettingOptions & {
      rename?: string | undefined;
      clearFilters?: boolean | undefined;
      clearHeaders?: boolean | undefined;
      enable?: boolean | undefined;
      disable?: boolean | undefined;
      rotateSecret?: boolean | undefined;
      secretStdin?: boolean | undefined;
      keepOld?: string | undefined;
    },
): Promise<void> {
  if (options.enable && options.disable) throw new AdminError('use --enable or --disable, not both');
  if (options.clearFilters && options.filter) throw new AdminError('use --filter or --clear-filters, not both');
  if (options.clearHeaders && options.header) throw new AdminError('use --header or --clear-headers, not both');
  if ((options.secretStdin || options.keepOld !== undefined) && !options.rotateSecret)
    throw new AdminError('--secret-stdin and --keep-old go with --rotate-secret');
  const overlapMs = options.keepOld === undefined ? undefined : parseDuration(options.keepOld, '--keep-old');
  const secret = await secretFromStdin(options);
  const body: WebhookBody = {
    ...settings(options),
    ...(options.rename !== undefined ? { name: options.rename } : {}),
    ...(options.clearFilters ? { filters: [] } : {}),
    ...(options.clearHeaders ? { headers: {} } : {}),
    ...(options.enable ? { enabled: true } : options.disable ? { enabled: false } : {}),
  };
  if (Object.keys(body).length === 0 && !options.rotateSecret)
    throw new AdminError('nothing to change: give --url, --event, --filter, --header, --format, --enable/--disable, --rename or --rotate-secret');
  const client = await connectWebhooks(options);
  let webhook = Object.keys(body).length > 0 ? await client.update(ref, body) : await client.get(ref);
  let rotated: string | undefined;
  if (options.rotateSecret) {
    const result = await client.rotateSecret(webhook.id, { ...(secret !== undefined ? { secret } : {}), ...(overlapMs !== undefined ? { overlapMs } : {}) });
    webhook = result.webhook;
    rotated = result.secret;
  }
  if (options.json) printJson(rotated === undefined ? webhook : { webhook, secret: rotated });
  else {
    print(`updated webhook ${webhook.name}`);
    print(describe(webhook));
    if (rotated !== undefined) print(`secret: ${rotated}`);
  }
  if (rotated !== undefined) warnSecretShownOnce();
}

export async function webhookDelete(ref: string, options: WebhookCommandOptions): Promise<void> {
  const client = await connectWebhooks(options);
  await client.remove(ref);
  if (options.json) return printJson({ deleted: ref });
  print(`deleted webhook ${ref} with its delivery history`);
}

/** Sends a ping and (unless --no-wait) waits a little for its first attempt's outcome. */
export async function webhookPing(ref: string, options: WebhookCommandOptions & { wait?: boolean | undefined }, waitMs = 15_000): Promise<void> {
  const client = await connectWebhooks(options);
  let { delivery } = await client.ping(ref);
  const deadline = Date.now() + waitMs;
  while (options.wait !== false && delivery.lastAttempt === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    delivery = await client.delivery(ref, delivery.id);
  }
  if (options.json) return printJson({ delivery });
  print(`sent ping event ${delivery.eventId} (delivery ${delivery.id})`);
  if (delivery.lastAttempt) print(`first attempt: ${showAttempt(delivery.lastAttempt)}`);
  else if (options.wait !== false) print(`no attempt yet; see: berth webhook deliveries ${ref} ${delivery.id}`);
}

export async function webhookDeliveries(
  ref: string,
  id: string | undefined,
  options: WebhookCommandOptions & { status?: string | undefined; limit?: number | undefined },
): Promise<void> {
  const client = await connectWebhooks(options);
  if (id !== undefined) {
    const delivery = await client.delivery(ref, id);
    if (options.json) return printJson(delivery);
    print(describeDelivery(delivery));
    return;
  }
  const { deliveries } = await client.deliveries(ref, { status: options.status, limit: options.limit });
  if (options.json) return printJson({ deliveries });
  if (deliveries.length === 0) return print('no deliveries');
  print(
    table([
      ['DELIVERY', 'EVENT', 'ACTION', 'TARGET', 'STATUS', 'ATTEMPTS', 'LAST ATTEMPT'],
      ...deliveries.map((d) => [d.id, d.eventAt, d.action, target(d), d.status, String(d.attempts), d.lastAttempt ? showAttempt(d.lastAttempt) : '-']),
    ]),
  );
}

/** Redelivers the given deliveries, or with --failed every failed one (of the newest 500). */
export async function webhookRedeliver(ref: string, ids: string[], options: WebhookCommandOptions & { failed?: boolean | undefined }): Promise<void> {
  if (options.failed && ids.length > 0) throw new AdminError('give delivery ids or --failed, not both');
  if (!options.failed && ids.length === 0) throw new AdminError('which deliveries? give their ids (berth webhook deliveries NAME --status failed) or --failed');
  const client = await connectWebhooks(options);
  const targets = options.failed ? (await client.deliveries(ref, { status: 'failed', limit: 500 })).deliveries.map((d) => d.id) : ids;
  const redelivered: DeliveryView[] = [];
  for (const id of targets) redelivered.push((await client.redeliver(ref, id)).delivery);
  if (options.json) return printJson({ deliveries: redelivered });
  if (redelivered.length === 0) return print('no failed deliveries');
  for (const d of redelivered) print(`redelivering ${d.id} (event ${d.eventId}, ${d.action} ${target(d)})`);
}

// ---------------------------------------------------------------------------------------------
// Parsing and display

function settings(options: WebhookSettingOptions): WebhookBody {
  return {
    ...(options.url !== undefined ? { url: options.url } : {}),
    ...(options.event !== undefined
      ? {
          events: options.event
            .flatMap((e) => e.split(','))
            .map((e) => e.trim())
            .filter(Boolean),
        }
      : {}),
    ...(options.filter !== undefined ? { filters: options.filter } : {}),
    ...(options.header !== undefined ? { headers: parseHeaders(options.header) } : {}),
    ...(options.format !== undefined ? { format: options.format } : {}),
  };
}

/** `Name: value` (as curl takes them); the server validates names and values. */
export function parseHeaders(list: readonly string[]): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const text of list) {
    const colon = text.indexOf(':');
    if (colon <= 0) throw new AdminError(`invalid header ${JSON.stringify(text.slice(0, 60))}: expected "Name: value"`);
    headers[text.slice(0, colon).trim()] = text.slice(colon + 1).trim();
  }
  return headers;
}

export function parseDuration(text: string, flag: string): number {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) throw new AdminError(`invalid ${flag} ${JSON.stringify(text)}: give a duration like 0s, 30m, 24h or 7d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

async function secretFromStdin(options: { secretStdin?: boolean | undefined; passwordStdin?: boolean | undefined }): Promise<string | undefined> {
  if (!options.secretStdin) return undefined;
  if (options.passwordStdin) throw new AdminError('--secret-stdin and --password-stdin both read standard input: log in with `berth login` first');
  if (process.stdin.isTTY) throw new AdminError('--secret-stdin reads a pipe: echo "$SECRET" | berth webhook … --secret-stdin');
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  const secret = Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!secret) throw new AdminError('no secret on standard input (--secret-stdin)');
  return secret;
}

function describe(w: WebhookView): string {
  const headers = Object.keys(w.headers);
  return [
    `name:     ${w.name}`,
    `id:       ${w.id}`,
    `url:      ${w.url}`,
    `status:   ${w.enabled ? 'enabled' : 'disabled'}`,
    `events:   ${w.events.join(', ')}`,
    `filters:  ${w.filters.length > 0 ? w.filters.join(' ') : '* (everything)'}`,
    `format:   ${w.format}`,
    `headers:  ${headers.length > 0 ? headers.join(', ') : '-'}`,
    ...(w.previousSecretUntil !== null ? [`previous secret signs until ${w.previousSecretUntil}`] : []),
    `created:  ${w.createdAt}`,
  ].join('\n');
}

function target(d: DeliveryView): string {
  if (d.repository === null) return '-';
  return d.tags.length > 0 && d.action === 'push'
    ? `${d.repository}:${d.tags.join(',')}`
    : `${d.repository}@${d.digest ?? ''}${d.tags.length > 0 ? ` (${d.tags.join(',')})` : ''}`;
}

function showAttempt(a: NonNullable<DeliveryView['lastAttempt']>): string {
  const outcome = a.statusCode !== null ? `HTTP ${a.statusCode}` : (a.error ?? 'no response');
  return `${a.ok ? 'ok' : 'failed'}: ${outcome} in ${a.latencyMs} ms at ${a.at}`;
}

function describeDelivery(d: DeliveryDetailView): string {
  const lines = [
    `delivery: ${d.id}`,
    `event:    ${d.eventId} (${d.action} ${target(d)}, ${d.eventAt})`,
    `status:   ${d.status}${d.nextAttemptAt ? ` (next attempt ${d.nextAttemptAt})` : ''}`,
    `attempts:${d.attemptHistory.length === 0 ? ' none yet' : ''}`,
  ];
  if (d.attemptHistory.length > 0) {
    const rows = [
      ['CYCLE', 'ATTEMPT', 'AT', 'RESULT', 'LATENCY', 'RESPONSE'],
      ...d.attemptHistory.map((a) => [
        String(a.cycle),
        String(a.attempt),
        a.at,
        a.ok ? `ok HTTP ${a.statusCode}` : a.statusCode !== null ? `HTTP ${a.statusCode}${a.error ? ` (${a.error})` : ''}` : (a.error ?? 'failed'),
        `${a.latencyMs} ms`,
        (a.responseSnippet ?? '').replace(/\s+/g, ' ').slice(0, 60),
      ]),
    ];
    lines.push(
      ...table(rows)
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  return lines.join('\n');
}
