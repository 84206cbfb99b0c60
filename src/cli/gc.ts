/** `berth gc`: remove unreferenced blobs and abandoned uploads (safe while the server runs). */
import { loadConfig } from '../config/load.js';
import { openMetadata, openStorage } from '../app/backends.js';
import { createLogger } from '../shared/logger.js';
import { systemClock } from '../shared/clock.js';
import { createRegistry } from '../registry/index.js';
import type { GcRunRecord } from '../metadata/operations-store.js';
import type { Metadata } from '../metadata/store.js';

export interface GcCliOptions {
  config?: string;
  data?: string;
  dryRun?: boolean;
  graceMs?: number;
}

export async function gc(options: GcCliOptions): Promise<void> {
  const config = loadConfig({ file: options.config, overrides: { dataDir: options.data } });
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const metadata = await openMetadata(config);
  try {
    const registry = createRegistry({ storage: await openStorage(config), metadata, clock: systemClock, logger, limits: config.limits });
    const dryRun = options.dryRun ?? false;
    const startedAt = systemClock.now();
    let report: Awaited<ReturnType<typeof registry.collectGarbage>>;
    try {
      report = await registry.collectGarbage({ dryRun, graceMs: options.graceMs ?? config.gc.graceMs });
    } catch (err) {
      if (!dryRun) await recordRun(metadata, { startedAt, status: 'failed', blobs: 0, bytes: 0, uploads: 0 });
      throw err;
    }
    // The servers' metrics (berth_gc_*) read the runs from the database: this process ends now.
    if (!dryRun) await recordRun(metadata, { startedAt, status: 'succeeded', blobs: report.blobs.length, bytes: report.bytes, uploads: report.uploads.length });
    const verb = report.dryRun ? 'would delete' : 'deleted';
    for (const blob of report.blobs) console.log(`${verb} blob ${blob.digest} (${blob.size} bytes)`);
    for (const id of report.uploads) console.log(`${verb} upload ${id}`);
    console.log(`${verb} ${report.blobs.length} blob(s), ${formatBytes(report.bytes)}; ${report.uploads.length} upload(s)`);
  } finally {
    await metadata.close();
  }
}

async function recordRun(metadata: Metadata, run: Omit<GcRunRecord, 'finishedAt'>): Promise<void> {
  await metadata.operations.recordGcRun({ ...run, finishedAt: systemClock.now() }).catch((err: unknown) => {
    console.error(`berth gc: could not record the run for metrics: ${(err as Error).message}`);
  });
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
