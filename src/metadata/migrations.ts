/**
 * Schema migrations, written once for both dialects with Kysely's schema builder. Append new
 * migrations; never edit a released one (their names are recorded in the database). The
 * PostgreSQL forms were first run (and their text columns given the "C" collation) before any
 * release used PostgreSQL, so no PostgreSQL database exists with the earlier forms.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

export type Dialect = 'sqlite' | 'postgres';

function migrations(dialect: Dialect): Record<string, Migration> {
  const bytes = dialect === 'postgres' ? 'bytea' : 'blob';
  const autoId = dialect === 'postgres' ? 'bigserial' : 'integer';
  // Text compares and sorts by bytes everywhere (SQLite's BINARY collation): catalog and tag-list
  // pagination (`last=`) and every ORDER BY must not depend on the PostgreSQL server's locale.
  const text = dialect === 'postgres' ? sql`text collate "C"` : 'text';
  return {
    '0001-registry-core': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('repositories')
          .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('name', text, (c) => c.notNull().unique())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('blobs')
          .addColumn('digest', text, (c) => c.primaryKey())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('pushed_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('repository_blobs')
          .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
          .addColumn('digest', text, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('repository_blobs_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
        await db.schema
          .createTable('manifest_contents')
          .addColumn('digest', text, (c) => c.primaryKey())
          .addColumn('content', sql.raw(bytes), (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('manifests')
          .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
          .addColumn('digest', text, (c) => c.notNull())
          .addColumn('media_type', text, (c) => c.notNull())
          .addColumn('size', 'bigint', (c) => c.notNull())
          .addColumn('subject_digest', text)
          .addColumn('artifact_type', text)
          .addColumn('annotations', text)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('manifests_pk', ['repository_id', 'digest'])
          .execute();
        await db.schema.createIndex('manifests_subject').on('manifests').columns(['repository_id', 'subject_digest']).execute();
        await db.schema.createIndex('manifests_digest').on('manifests').column('digest').execute();
        await db.schema
          .createTable('manifest_references')
          .addColumn('repository_id', 'bigint', (c) => c.notNull())
          .addColumn('manifest_digest', text, (c) => c.notNull())
          .addColumn('child_digest', text, (c) => c.notNull())
          .addColumn('kind', text, (c) => c.notNull())
          .addPrimaryKeyConstraint('manifest_references_pk', ['repository_id', 'manifest_digest', 'child_digest'])
          .execute();
        await db.schema.createIndex('manifest_references_child').on('manifest_references').column('child_digest').execute();
        await db.schema
          .createTable('tags')
          .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
          .addColumn('name', text, (c) => c.notNull())
          .addColumn('digest', text, (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('tags_pk', ['repository_id', 'name'])
          .execute();
        await db.schema.createIndex('tags_digest').on('tags').columns(['repository_id', 'digest']).execute();
        await db.schema
          .createTable('uploads')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0002-auth': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('principals')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('kind', text, (c) => c.notNull())
          .addColumn('name', text, (c) => c.notNull().unique())
          .addColumn('description', text)
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('expires_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('credentials')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
          .addColumn('label', text, (c) => c.notNull())
          .addColumn('hash', text, (c) => c.notNull())
          .addColumn('expires_at', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('credentials_label', ['principal_id', 'label'])
          .execute();
        await db.schema
          .createTable('grants')
          .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
          .addColumn('pattern', text, (c) => c.notNull())
          .addColumn('permission', text, (c) => c.notNull())
          .addPrimaryKeyConstraint('grants_pk', ['principal_id', 'pattern', 'permission'])
          .execute();
        await db.schema
          .createTable('refresh_tokens')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
          .addColumn('credential_id', text)
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('revoked_at', 'bigint')
          .execute();
        await db.schema.createIndex('refresh_tokens_principal').on('refresh_tokens').column('principal_id').execute();
        await db.schema
          .createTable('signing_keys')
          .addColumn('kid', text, (c) => c.primaryKey())
          .addColumn('alg', text, (c) => c.notNull())
          .addColumn('private_jwk', text, (c) => c.notNull())
          .addColumn('public_jwk', text, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('retired_at', 'bigint')
          .execute();
        await db.schema
          .createTable('audit_log')
          .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('event', text, (c) => c.notNull())
          .addColumn('principal_id', text)
          .addColumn('principal_name', text)
          .addColumn('client_address', text)
          .addColumn('detail', text)
          .execute();
        await db.schema
          .createTable('anonymous_pull')
          .addColumn('pattern', text, (c) => c.primaryKey())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .execute();
      },
    },
    '0003-federation-and-provenance': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('federated_credentials')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('principal_id', text, (c) => c.notNull().references('principals.id').onDelete('cascade'))
          .addColumn('name', text, (c) => c.notNull())
          .addColumn('issuer', text, (c) => c.notNull())
          .addColumn('audiences', text, (c) => c.notNull())
          .addColumn('subject', text, (c) => c.notNull())
          .addColumn('conditions', text, (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('federated_credentials_name', ['principal_id', 'name'])
          .execute();
        await db.schema.createIndex('federated_credentials_issuer').on('federated_credentials').column('issuer').execute();
        await db.schema
          .createTable('pushes')
          .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('repository_id', 'bigint', (c) => c.notNull().references('repositories.id'))
          .addColumn('digest', text, (c) => c.notNull())
          .addColumn('tag', text)
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('principal_id', text)
          .addColumn('principal_name', text)
          .addColumn('provenance', text)
          .execute();
        await db.schema.createIndex('pushes_repository').on('pushes').columns(['repository_id', 'tag', 'at']).execute();
        await db.schema.createIndex('pushes_digest').on('pushes').columns(['repository_id', 'digest']).execute();
      },
    },
    '0004-webhooks': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('webhooks')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('name', text, (c) => c.notNull().unique())
          .addColumn('url', text, (c) => c.notNull())
          .addColumn('events', text, (c) => c.notNull())
          .addColumn('filters', text, (c) => c.notNull())
          .addColumn('headers', text, (c) => c.notNull())
          .addColumn('secret', text, (c) => c.notNull())
          .addColumn('previous_secret', text)
          .addColumn('previous_secret_until', 'bigint')
          .addColumn('format', text, (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('events')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('action', text, (c) => c.notNull())
          .addColumn('repository', text)
          .addColumn('tags', text, (c) => c.notNull())
          .addColumn('digest', text)
          .addColumn('payload', text, (c) => c.notNull())
          .addColumn('subscription_id', text)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('fanned_out_at', 'bigint')
          .execute();
        await db.schema.createIndex('events_fan_out').on('events').columns(['fanned_out_at', 'created_at']).execute();
        await db.schema
          .createTable('deliveries')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('event_id', text, (c) => c.notNull().references('events.id').onDelete('cascade'))
          .addColumn('subscription_id', text, (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
          .addColumn('status', text, (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('cycle', 'integer', (c) => c.notNull())
          .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
          .addColumn('claimed_by', text)
          .addColumn('claimed_until', 'bigint')
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addUniqueConstraint('deliveries_event_subscription', ['event_id', 'subscription_id'])
          .execute();
        await db.schema.createIndex('deliveries_due').on('deliveries').columns(['status', 'next_attempt_at']).execute();
        await db.schema.createIndex('deliveries_subscription').on('deliveries').columns(['subscription_id', 'created_at']).execute();
        await db.schema
          .createTable('delivery_attempts')
          .addColumn('id', autoId, (c) => (dialect === 'sqlite' ? c.primaryKey().autoIncrement() : c.primaryKey()))
          .addColumn('delivery_id', text, (c) => c.notNull().references('deliveries.id').onDelete('cascade'))
          .addColumn('cycle', 'integer', (c) => c.notNull())
          .addColumn('attempt', 'integer', (c) => c.notNull())
          .addColumn('at', 'bigint', (c) => c.notNull())
          .addColumn('status_code', 'integer')
          .addColumn('error', text)
          .addColumn('latency_ms', 'integer', (c) => c.notNull())
          .addColumn('response_snippet', text)
          .addColumn('ok', 'integer', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('delivery_attempts_delivery').on('delivery_attempts').columns(['delivery_id', 'id']).execute();
      },
    },
    '0005-import-jobs': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('import_jobs')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('status', text, (c) => c.notNull())
          .addColumn('spec', text, (c) => c.notNull())
          .addColumn('credentials', text)
          .addColumn('requested_by_id', text)
          .addColumn('requested_by_name', text)
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('not_before', 'bigint', (c) => c.notNull())
          .addColumn('claimed_by', text)
          .addColumn('claimed_until', 'bigint')
          .addColumn('progress', text)
          .addColumn('result', text)
          .addColumn('error_code', text)
          .addColumn('error_message', text)
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('started_at', 'bigint')
          .addColumn('finished_at', 'bigint')
          .execute();
        await db.schema.createIndex('import_jobs_runnable').on('import_jobs').columns(['status', 'not_before']).execute();
        await db.schema.createIndex('import_jobs_requester').on('import_jobs').columns(['requested_by_id', 'created_at']).execute();
      },
    },
    '0006-sync': {
      async up(db: Kysely<unknown>) {
        await db.schema
          .createTable('sync_rules')
          .addColumn('id', text, (c) => c.primaryKey())
          .addColumn('name', text, (c) => c.notNull().unique())
          .addColumn('spec', text, (c) => c.notNull())
          .addColumn('webhook_secret', text)
          .addColumn('enabled', 'integer', (c) => c.notNull())
          .addColumn('created_at', 'bigint', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addColumn('next_reconcile_at', 'bigint')
          .addColumn('run_requested_at', 'bigint')
          .addColumn('reconcile_claimed_by', text)
          .addColumn('reconcile_claimed_until', 'bigint')
          .addColumn('last_reconcile_started_at', 'bigint')
          .addColumn('last_reconcile_at', 'bigint')
          .addColumn('last_reconcile_error', text)
          .addColumn('last_reconcile_stats', text)
          .addColumn('backfilled_at', 'bigint')
          .addColumn('last_sync_at', 'bigint')
          .addColumn('last_error', text)
          .addColumn('last_error_at', 'bigint')
          .execute();
        await db.schema
          .createTable('sync_queue')
          .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
          .addColumn('repository', text, (c) => c.notNull())
          .addColumn('tag', text, (c) => c.notNull())
          .addColumn('digest', text)
          .addColumn('reason', text, (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull())
          .addColumn('enqueued_at', 'bigint', (c) => c.notNull())
          .addColumn('not_before', 'bigint', (c) => c.notNull())
          .addColumn('attempts', 'integer', (c) => c.notNull())
          .addColumn('last_error', text)
          .addColumn('claimed_by', text)
          .addColumn('claimed_until', 'bigint')
          .addPrimaryKeyConstraint('sync_queue_pk', ['rule_id', 'repository', 'tag'])
          .execute();
        await db.schema.createIndex('sync_queue_due').on('sync_queue').columns(['not_before', 'enqueued_at']).execute();
        await db.schema
          .createTable('sync_images')
          .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
          .addColumn('repository', text, (c) => c.notNull())
          .addColumn('tag', text, (c) => c.notNull())
          .addColumn('source_digest', text)
          .addColumn('digest', text)
          .addColumn('last_checked_at', 'bigint')
          .addColumn('last_sync_at', 'bigint')
          .addColumn('last_error', text)
          .addColumn('last_error_at', 'bigint')
          .addColumn('copies', 'integer', (c) => c.notNull())
          .addPrimaryKeyConstraint('sync_images_pk', ['rule_id', 'repository', 'tag'])
          .execute();
        await db.schema
          .createTable('sync_deliveries')
          .addColumn('rule_id', text, (c) => c.notNull().references('sync_rules.id').onDelete('cascade'))
          .addColumn('event_id', text, (c) => c.notNull())
          .addColumn('received_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('sync_deliveries_pk', ['rule_id', 'event_id'])
          .execute();
        await db.schema.createIndex('sync_deliveries_received').on('sync_deliveries').column('received_at').execute();
      },
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
