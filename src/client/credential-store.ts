/**
 * docker-credential-berth's own file of refresh tokens: `$BERTH_CONFIG_DIR/credentials.json`, else
 * `$XDG_CONFIG_HOME/berth/credentials.json` (default `~/.config/berth/credentials.json`).
 *
 * Only refresh tokens are kept, never passwords. The file is mode 0600 in a 0700 directory, every
 * write replaces it atomically (temp file + rename), and read-modify-write cycles hold a lock file so
 * two helpers running at once (docker and podman both call `get`) cannot lose each other's updates.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface StoredCredential {
  /** The user name handed to clients with the token: the null GUID (refresh-token login). */
  username: string;
  refreshToken: string;
}

interface CredentialFile {
  auths?: Record<string, StoredCredential>;
  [key: string]: unknown;
}

/** A lock older than this is taken to belong to a helper that died, and is broken. */
const staleLockMs = 30_000;
const lockRetryMs = 20;

export function credentialStorePath(env: NodeJS.ProcessEnv = process.env): string {
  if (env['BERTH_CONFIG_DIR']) return join(env['BERTH_CONFIG_DIR'], 'credentials.json');
  return join(env['XDG_CONFIG_HOME'] || join(homedir(), '.config'), 'berth', 'credentials.json');
}

export class CredentialStore {
  constructor(readonly path: string = credentialStorePath()) {}

  async get(registry: string): Promise<StoredCredential | undefined> {
    return (await this.read()).auths?.[registry];
  }

  /** Registry -> user name, as the helper protocol's `list` reports it. */
  async list(): Promise<Record<string, string>> {
    const auths = (await this.read()).auths ?? {};
    return Object.fromEntries(Object.entries(auths).map(([registry, entry]) => [registry, entry.username]));
  }

  async put(registry: string, credential: StoredCredential): Promise<void> {
    await this.update(registry, () => credential);
  }

  /** Forgets `registry`; false if nothing was stored for it. */
  async remove(registry: string): Promise<boolean> {
    let found = false;
    await this.update(registry, (current) => {
      found = current !== undefined;
      return undefined;
    });
    return found;
  }

  /**
   * Read-modify-write of one entry under the lock: `change` sees the entry as it is now (another
   * helper may have renewed it meanwhile) and returns the new one, or undefined to delete it.
   */
  async update(
    registry: string,
    change: (current: StoredCredential | undefined) => Promise<StoredCredential | undefined> | StoredCredential | undefined,
  ): Promise<StoredCredential | undefined> {
    return this.locked(async () => {
      const file = await this.read();
      const current = file.auths?.[registry];
      const next = await change(current);
      if (next === current) return current;
      const { [registry]: _old, ...others } = file.auths ?? {};
      file.auths = next === undefined ? others : { ...others, [registry]: next };
      await this.write(file);
      return next;
    });
  }

  private async read(): Promise<CredentialFile> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new Error(`cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
      return parsed as CredentialFile;
    } catch (err) {
      throw new Error(`${this.path} is corrupt (${(err as Error).message}); delete it and log in again`, { cause: err });
    }
  }

  private async write(file: CredentialFile): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const temp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
      await rename(temp, this.path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
  }

  private async locked<T>(work: () => Promise<T>): Promise<T> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const lock = `${this.path}.lock`;
    for (;;) {
      try {
        await (await open(lock, 'wx', 0o600)).close();
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const since = await stat(lock).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (since > staleLockMs) await rm(lock, { force: true });
        else await sleep(lockRetryMs);
      }
    }
    try {
      return await work();
    } finally {
      await rm(lock, { force: true });
    }
  }
}
