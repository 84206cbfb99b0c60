/**
 * Server files and environment variables an owner may name through the management API (a sync
 * rule's `passwordFile`, `tokenFile`, `passwordEnv`). An owner is not the host operator: without
 * this confinement a rule could name `/etc/shadow`, the metadata password file or
 * `AWS_SECRET_ACCESS_KEY` and have the server send it, as a password, to a URL of the owner's
 * choice.
 *
 * Contract:
 * - A file reference must resolve inside `secrets.fileDir` (a relative name resolves there); a
 *   variable must start with `secrets.envPrefix`. A setting that is unset refuses every reference
 *   of its kind. `check` decides from the text alone (no filesystem access), so creating a rule
 *   cannot probe the disk; it throws 400 INVALID_REQUEST naming the setting.
 * - `readFile` checks again (the configuration may have changed since the rule was stored), then
 *   resolves symlinks and refuses a target outside the directory's own real path, opens without
 *   following a final symlink and reads only a regular file of at most `maxSecretBytes`. Every
 *   failure there (missing, outside through a symlink, not a file, unreadable) is the same error,
 *   so no answer tells whether some file outside the directory exists; the real reason is only
 *   logged, for the operator.
 * - References written in the configuration file (`import.sources[]`, `metadata.passwordFile`, …)
 *   are the operator's and do not come through here.
 */
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { ApiError } from '../api/errors.js';
import type { SourceCredentials } from './rule.js';

export interface SecretReferenceSettings {
  /** The directory file references must stay in; unset: none allowed. */
  fileDir?: string | undefined;
  /** The prefix variable references must have; unset: none allowed. */
  envPrefix?: string | undefined;
}

/** A password or token file is small; anything larger is not one (and is not read whole). */
export const maxSecretBytes = 64 * 1024;

/** Reads secret references: confined (`SecretReferences`, for what owners write) or the operator's own. */
export interface SecretReader {
  check(credentials: SourceCredentials): void;
  readFile(field: string, reference: string): Promise<string>;
  readEnv(field: string, name: string): string;
}

/**
 * References written by the host operator in `berth.yaml` (for example a `cache.rules[]` entry):
 * the operator may name any file or variable, so nothing is confined; a failure still says what to fix.
 */
export function operatorSecrets(env: NodeJS.ProcessEnv = process.env): SecretReader {
  return {
    check: () => undefined,
    async readFile(field, reference) {
      const { readFile } = await import('node:fs/promises');
      try {
        return await readFile(reference, 'utf8');
      } catch (err) {
        throw new ApiError(
          'INVALID_REQUEST',
          `${field}: cannot read ${reference} (${(err as NodeJS.ErrnoException).code ?? 'error'}): fix the server configuration`,
        );
      }
    },
    readEnv(field, name) {
      const value = env[name];
      if (!value) throw new ApiError('INVALID_REQUEST', `${field}: the variable ${name} is not set in the server's environment`);
      return value;
    },
  };
}

export class SecretReferences implements SecretReader {
  constructor(
    private readonly settings: SecretReferenceSettings,
    private readonly logger: Logger,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** Throws 400 INVALID_REQUEST (naming the setting) if `credentials` reference anything out of bounds. */
  check(credentials: SourceCredentials): void {
    if (credentials.kind === 'basic') {
      if (credentials.passwordFile !== undefined) this.fileWithin('source.credentials.passwordFile', credentials.passwordFile);
      if (credentials.passwordEnv !== undefined) this.envWithin('source.credentials.passwordEnv', credentials.passwordEnv);
    } else if (credentials.kind === 'oidc') {
      this.fileWithin('source.credentials.tokenFile', credentials.tokenFile);
    }
  }

  /**
   * The content of the file `reference` names (`field` is how the rule calls it, for messages).
   * Throws INVALID_REQUEST: the check's answer, or one answer for every failure to read (see the
   * module comment).
   */
  async readFile(field: string, reference: string): Promise<string> {
    const { dir, path } = this.fileWithin(field, reference);
    const unreadable = (reason: string): ApiError => {
      this.logger.warn({ field, reference, reason }, 'a secret file reference could not be read');
      return new ApiError(
        'INVALID_REQUEST',
        `${field} ${JSON.stringify(reference)}: there is no readable file of that name in secrets.fileDir (check the name and that the operator placed it there)`,
      );
    };
    let real: string;
    let realDir: string;
    try {
      [real, realDir] = await Promise.all([realpath(path), realpath(dir)]);
    } catch (err) {
      throw unreadable((err as NodeJS.ErrnoException).code ?? 'error');
    }
    if (!inside(realDir, real)) throw unreadable('a symlink leads out of secrets.fileDir');
    try {
      // O_NOFOLLOW: the real path has no symlink left; O_NONBLOCK: a FIFO placed there cannot hang the open.
      const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      try {
        const info = await handle.stat();
        if (!info.isFile()) throw unreadable('not a regular file');
        if (info.size > maxSecretBytes) throw unreadable(`larger than ${maxSecretBytes} bytes`);
        const buffer = Buffer.alloc(maxSecretBytes + 1);
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
        if (bytesRead > maxSecretBytes) throw unreadable(`larger than ${maxSecretBytes} bytes`);
        return buffer.subarray(0, bytesRead).toString('utf8');
      } finally {
        await handle.close();
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw unreadable((err as NodeJS.ErrnoException).code ?? 'error');
    }
  }

  /** The value of the variable `name` names (checked against the prefix first). */
  readEnv(field: string, name: string): string {
    this.envWithin(field, name);
    const value = this.env[name];
    if (!value) throw new ApiError('INVALID_REQUEST', `${field}: the variable ${name} is not set in the server's environment`);
    return value;
  }

  private fileWithin(field: string, reference: string): { dir: string; path: string } {
    const dir = this.settings.fileDir;
    if (dir === undefined) {
      throw new ApiError(
        'INVALID_REQUEST',
        `${field}: this server does not allow file references (the operator enables them with secrets.fileDir); give the password inline`,
      );
    }
    const root = resolve(dir);
    const path = resolve(root, reference);
    if (reference.includes('\0') || !inside(root, path) || path === root) {
      throw new ApiError('INVALID_REQUEST', `${field} must name a file inside secrets.fileDir (${root})`);
    }
    return { dir: root, path };
  }

  private envWithin(field: string, name: string): void {
    const prefix = this.settings.envPrefix;
    if (prefix === undefined) {
      throw new ApiError(
        'INVALID_REQUEST',
        `${field}: this server does not allow environment variable references (the operator enables them with secrets.envPrefix); give the password inline`,
      );
    }
    if (!name.startsWith(prefix) || name.length === prefix.length) {
      throw new ApiError('INVALID_REQUEST', `${field} must name a variable starting with secrets.envPrefix (${prefix})`);
    }
  }
}

/** True if `path` is `root` or below it (both absolute and normalised). */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}
