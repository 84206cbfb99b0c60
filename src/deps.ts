/** Builds the storage driver and metadata store a configuration names. */
import { join, resolve } from 'node:path';
import type { Config } from './config/schema.js';
import { openPostgresMetadata } from './metadata/sql/postgres.js';
import { openSqliteMetadata } from './metadata/sql/open.js';
import type { Metadata } from './metadata/store.js';
import type { StorageDriver } from './storage/driver.js';
import { FilesystemDriver } from './storage/filesystem.js';
import { S3Driver } from './storage/s3.js';

export function openStorage(config: Config): StorageDriver {
  if (config.storage.driver === 's3') return S3Driver.fromConfig(config.storage.s3!);
  return new FilesystemDriver(resolve(config.storage.root ?? join(config.dataDir, 'storage')));
}

export function openMetadata(config: Config): Promise<Metadata> {
  if (config.metadata.driver === 'postgres') return openPostgresMetadata(config.metadata);
  return openSqliteMetadata(resolve(config.metadata.path ?? join(config.dataDir, 'metadata.db')));
}
