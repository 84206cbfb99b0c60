import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runDriverSuite } from './driver-suite.js';
import { FilesystemDriver } from './filesystem.js';

const roots: string[] = [];
after(async () => Promise.all(roots.map((root) => rm(root, { recursive: true, force: true }))));

runDriverSuite('filesystem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-fs-'));
  roots.push(root);
  return new FilesystemDriver(root);
});
