import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { packageRoot } from './package-root.js';

describe('packageRoot', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-package-root-'));
    await mkdir(join(dir, 'pkg', 'dist', 'bin', 'chunks'), { recursive: true });
    await mkdir(join(dir, 'pkg', 'src', 'http', 'handlers', 'console'), { recursive: true });
    await writeFile(join(dir, 'pkg', 'package.json'), '{}');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('finds the nearest package.json above a module, at any depth', () => {
    const module = (...parts: string[]) => pathToFileURL(join(dir, 'pkg', ...parts)).href;
    assert.equal(packageRoot(module('dist', 'bin', 'chunks', 'chunk-X.js')), join(dir, 'pkg'));
    assert.equal(packageRoot(module('src', 'http', 'handlers', 'console', 'assets.ts')), join(dir, 'pkg'));
    assert.equal(packageRoot(module('index.js')), join(dir, 'pkg'));
  });

  it('is this repository for its own modules', () => {
    assert.equal(packageRoot(import.meta.url), join(fileURLToPath(new URL('.', import.meta.url)), '..', '..'));
  });
});
