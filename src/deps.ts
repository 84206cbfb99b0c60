/** Builds the storage driver and metadata store a configuration names. */
import { join, resolve } from 'node:path';
import type { Config } from './config/schema.js';
import { openSqliteMetadata } from './metadata/sql/open.js';
import type { Metadata } from './metadata/store.js';
import type { StorageDriver } from './storage/driver.js';
import { FilesystemDriver } from './storage/filesystem.js';

export function openStorage(config: Config): StorageDriver {
  return new FilesystemDriver(resolve(config.storage.root ?? join(config.dataDir, 'storage')));
}

export function openMetadata(config: Config): Promise<Metadata> {
  return openSqliteMetadata(resolve(config.metadata.path ?? join(config.dataDir, 'metadata.db')));
}
