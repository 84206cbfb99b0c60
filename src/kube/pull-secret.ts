/**
 * The Secret a binding owns and the service account entry that points at it: pure functions from
 * (binding, credentials, clock) to objects, and back from a Secret to what the controller needs to
 * know about it. The annotations say when and from what the credentials were made, never the
 * credentials themselves.
 */
import { createHash } from 'node:crypto';
import { refreshTokenUser } from '../remote/tokens.js';
import type { Secret } from './cluster.js';
import type { RegistryCredentials } from './exchange.js';
import { annotations, apiVersion, kind, labels, managedByValue, type PullBinding } from './types.js';
import type { ValidBinding } from './validation.js';

export const dockerConfigJsonType = 'kubernetes.io/dockerconfigjson';
export const dockerConfigJsonKey = '.dockerconfigjson';

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Everything the credentials depend on; a change means new credentials at once. */
export function inputsHash(valid: ValidBinding, audience: string): string {
  return sha256(JSON.stringify([valid.server, valid.scopes, valid.tokenServiceAccount, valid.clientId ?? null, valid.targetServiceAccount, audience]));
}

/** When to replace credentials issued at `issuedAt` that expire at `expiresAt`. */
export function refreshTime(issuedAt: number, expiresAt: number, fraction: number): number {
  return Math.floor(issuedAt + Math.max(0, expiresAt - issuedAt) * fraction);
}

/**
 * `{"auths": {"<server>": {username, password, auth}}}`: kubelet passes user name and password to
 * the container runtime; skopeo and podman read `auth`. Both mean Basic auth with the null-GUID
 * user, whose password Berth takes as a refresh token.
 */
export function dockerConfigJson(server: string, refreshToken: string): string {
  return JSON.stringify({
    auths: {
      [server]: {
        username: refreshTokenUser,
        password: refreshToken,
        auth: Buffer.from(`${refreshTokenUser}:${refreshToken}`).toString('base64'),
      },
    },
  });
}

export interface SecretState {
  inputsHash: string | undefined;
  refreshedAt: number | undefined;
  expiresAt: number | undefined;
  refreshAt: number | undefined;
  serviceAccount: string | undefined;
  /** The dockerconfigjson parses and has an entry for this server with a password. */
  hasCredentialsFor(server: string): boolean;
}

function time(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}

export function readSecretState(secret: Secret): SecretState {
  const a = secret.metadata.annotations ?? {};
  return {
    inputsHash: a[annotations.inputsHash],
    refreshedAt: time(a[annotations.refreshedAt]),
    expiresAt: time(a[annotations.expiresAt]),
    refreshAt: time(a[annotations.refreshAt]),
    serviceAccount: a[annotations.serviceAccount],
    hasCredentialsFor(server: string): boolean {
      if (secret.type !== dockerConfigJsonType) return false;
      const raw = secret.data?.[dockerConfigJsonKey];
      if (raw === undefined) return false;
      try {
        const config = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as { auths?: Record<string, { password?: unknown }> };
        return typeof config.auths?.[server]?.password === 'string';
      } catch {
        return false;
      }
    },
  };
}

/** True if `secret` is controlled by `binding` (owner reference with its uid). */
export function ownedBy(secret: Secret, binding: PullBinding): boolean {
  return (secret.metadata.ownerReferences ?? []).some((ref) => ref.uid === binding.metadata.uid && ref.kind === kind && ref.controller === true);
}

export interface SecretInput {
  binding: PullBinding;
  name: string;
  valid: ValidBinding;
  credentials: RegistryCredentials;
  hash: string;
  refreshAt: number;
}

export function buildSecret({ binding, name, valid, credentials, hash, refreshAt }: SecretInput): Secret {
  const namespace = binding.metadata.namespace ?? '';
  return {
    metadata: {
      name,
      namespace,
      labels: { [labels.managedBy]: managedByValue, [labels.bindingUid]: binding.metadata.uid ?? '' },
      annotations: {
        [annotations.binding]: `${namespace}/${binding.metadata.name ?? ''}`,
        [annotations.refreshedAt]: new Date(credentials.issuedAt).toISOString(),
        [annotations.expiresAt]: new Date(credentials.expiresAt).toISOString(),
        [annotations.refreshAt]: new Date(refreshAt).toISOString(),
        [annotations.inputsHash]: hash,
        [annotations.serviceAccount]: valid.targetServiceAccount,
      },
      ownerReferences: [
        {
          apiVersion,
          kind,
          name: binding.metadata.name ?? '',
          uid: binding.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    type: dockerConfigJsonType,
    data: { [dockerConfigJsonKey]: Buffer.from(dockerConfigJson(valid.server, credentials.refreshToken)).toString('base64') },
  };
}

/** The service account's pull secrets with `name` added at the end (unchanged if present). */
export function withPullSecret(current: ReadonlyArray<{ name?: string }> | undefined, name: string): Array<{ name: string }> | undefined {
  const entries = (current ?? []).filter((e): e is { name: string } => typeof e.name === 'string');
  if (entries.some((e) => e.name === name)) return undefined;
  return [...entries, { name }];
}

/** The service account's pull secrets without `name` (undefined if it was not there). */
export function withoutPullSecret(current: ReadonlyArray<{ name?: string }> | undefined, name: string): Array<{ name: string }> | undefined {
  const entries = (current ?? []).filter((e): e is { name: string } => typeof e.name === 'string');
  if (!entries.some((e) => e.name === name)) return undefined;
  return entries.filter((e) => e.name !== name);
}
