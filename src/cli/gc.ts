/** `berth gc`: remove unreferenced blobs and abandoned uploads (safe while the server runs). */
import { loadConfig } from '../config/load.js';
import { openMetadata, openStorage } from '../app/backends.js';
import { createLogger } from '../shared/logger.js';
import { systemClock } from '../shared/clock.js';
import { createRegistry } from '../registry/index.js';

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
    const report = await registry.collectGarbage({
      dryRun: options.dryRun ?? false,
      graceMs: options.graceMs ?? config.gc.graceMs,
    });
    const verb = report.dryRun ? 'would delete' : 'deleted';
    for (const blob of report.blobs) console.log(`${verb} blob ${blob.digest} (${blob.size} bytes)`);
    for (const id of report.uploads) console.log(`${verb} upload ${id}`);
    console.log(`${verb} ${report.blobs.length} blob(s), ${formatBytes(report.bytes)}; ${report.uploads.length} upload(s)`);
  } finally {
    await metadata.close();
  }
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
