/** `berth webhook …`: arguments only; cli/webhooks.ts runs them. */
import type { Command } from 'commander';
import type { WebhookCommandOptions, WebhookSettingOptions } from '../webhooks.js';
import { collect, positiveInteger, type Managed } from './common.js';

const load = () => import('../webhooks.js');

/** `berth webhook create|list|show|update|delete|ping|deliveries|redeliver`. */
export function registerWebhookCommands(program: Command, managed: Managed): void {
  const webhook = program
    .command('webhook')
    .description('webhooks of a running registry: who is told about pushes and deletes, and what was delivered (owners only; docs/webhooks.md)');
  const settingFlags = (command: Command): Command =>
    command
      .option('--event <action>', 'push, delete or ping (repeatable or comma-separated; create default: push,delete)', collect)
      .option(
        '--filter <repo[:tag]>',
        'only these repositories (* within a path component, ** across) and optionally tags (*), e.g. tripinsights/* or **:v* (repeatable)',
        collect,
      )
      .option('--header <Name: value>', 'a header sent with every delivery, e.g. "Authorization: Bearer …" (repeatable; replaces all headers)', collect)
      .option('--format <format>', 'acr (the ACR webhook payload, default) or cloudevents (CloudEvents 1.0 JSON)');
  type Options = WebhookCommandOptions & WebhookSettingOptions & Record<string, unknown>;

  managed(
    settingFlags(
      webhook
        .command('create')
        .description('create a webhook and print its signing secret once')
        .argument('<name>', 'a name for it: letters, digits, ., _, -')
        .requiredOption('--url <url>', 'where to POST the events (http or https; must pass the egress policy)'),
    )
      .option('--disabled', 'create it disabled')
      .option('--secret-stdin', 'read the signing secret from standard input instead of generating one'),
  ).action(async (name: string, options: Options) => (await load()).webhookCreate(name, options));
  managed(webhook.command('list').description('list webhooks')).action(async (options: Options) => (await load()).webhookList(options));
  managed(webhook.command('show').description('show one webhook').argument('<webhook>', 'name or id')).action(async (ref: string, options: Options) =>
    (await load()).webhookShow(ref, options),
  );
  managed(
    settingFlags(
      webhook
        .command('update')
        .description('change a webhook; only what is given changes')
        .argument('<webhook>', 'name or id')
        .option('--url <url>', 'a new target URL'),
    )
      .option('--rename <name>', 'a new name')
      .option('--clear-filters', 'match every repository again')
      .option('--clear-headers', 'send no custom headers')
      .option('--enable', 'enable it')
      .option('--disable', 'disable it (nothing is queued for it while disabled; queued deliveries wait)')
      .option('--rotate-secret', 'a new signing secret, printed once')
      .option('--secret-stdin', 'with --rotate-secret: read the new secret from standard input')
      .option('--keep-old <duration>', 'with --rotate-secret: how long the old secret also signs (default 24h; 0s: not at all)'),
  ).action(async (ref: string, options: Options) => (await load()).webhookUpdate(ref, options));
  managed(webhook.command('delete').description('delete a webhook and its delivery history').argument('<webhook>', 'name or id')).action(
    async (ref: string, options: Options) => (await load()).webhookDelete(ref, options),
  );
  managed(
    webhook
      .command('ping')
      .description('send a test event through the normal delivery path and show the first attempt')
      .argument('<webhook>', 'name or id')
      .option('--no-wait', 'do not wait for the first attempt'),
  ).action(async (ref: string, options: Options & { wait?: boolean }) => (await load()).webhookPing(ref, options));
  managed(
    webhook
      .command('deliveries')
      .description('the delivery history of a webhook, newest first, or one delivery with every attempt')
      .argument('<webhook>', 'name or id')
      .argument('[delivery]', 'a delivery id: show its attempts and payload')
      .option('--status <status>', 'only pending, delivered or failed deliveries')
      .option('--limit <n>', 'how many (default 50, at most 500)', positiveInteger),
  ).action(async (ref: string, id: string | undefined, options: Options & { status?: string; limit?: number }) =>
    (await load()).webhookDeliveries(ref, id, options),
  );
  managed(
    webhook
      .command('redeliver')
      .description('send deliveries again (same event id): a new cycle of attempts')
      .argument('<webhook>', 'name or id')
      .argument('[deliveries...]', 'delivery ids')
      .option('--failed', 'every failed delivery of the webhook'),
  ).action(async (ref: string, ids: string[], options: Options & { failed?: boolean }) => (await load()).webhookRedeliver(ref, ids, options));
}
