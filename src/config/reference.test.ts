import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { loadConfig, ConfigError } from './load.js';
import { configReference } from './reference.js';

describe('configuration', () => {
  it('docs/configuration.md is generated from the current schema (run `npm run docs:config`)', async () => {
    const committed = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    assert.equal(committed, configReference());
  });

  it('applies defaults, then environment, then flags', () => {
    const config = loadConfig({ env: { BERTH_ADDR: '127.0.0.1:6000', BERTH_DATA: '/env' }, overrides: { dataDir: '/flag' } });
    assert.equal(config.addr, '127.0.0.1:6000');
    assert.equal(config.dataDir, '/flag');
    assert.equal(config.limits.maxManifestBytes, 4 * 1024 * 1024);
  });

  it('fails fast on unknown keys and bad addresses, naming the problem', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { addr: 'nonsense' } }),
      (err: unknown) => err instanceof ConfigError && /HOST:PORT/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ env: {}, overrides: { limits: { maxManifestBytes: -1 } } }),
      (err: unknown) => err instanceof ConfigError && /limits\.maxManifestBytes/.test(err.message),
    );
  });
});
