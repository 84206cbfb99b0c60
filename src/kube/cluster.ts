/**
 * The Kubernetes API as the reconciler needs it: a dozen calls, each on one object, behind an
 * interface so the reconcile logic does not depend on a client library (kube-client.ts implements
 * it with @kubernetes/client-node). Writes are optimistic: they carry the resourceVersion that was
 * read, and a concurrent change fails with ConflictError, after which the key is reconciled again
 * from a fresh read.
 */
import type { ObjectMeta, PullBinding, PullBindingStatus } from './types.js';

export interface ServiceAccount {
  metadata: ObjectMeta;
  imagePullSecrets?: Array<{ name?: string }>;
}

export interface Secret {
  metadata: ObjectMeta;
  type?: string;
  /** Base64 values, as the API carries them. */
  data?: Record<string, string>;
}

export interface ServiceAccountToken {
  token: string;
  /** ms since the epoch. */
  expiresAt: number;
}

export type EventType = 'Normal' | 'Warning';

/** The object changed since it was read (HTTP 409), or a precondition failed. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** Any other failure of the API server, with its HTTP status when there was one. */
export class KubeApiError extends Error {
  override name = 'KubeApiError';
  constructor(
    message: string,
    readonly status: number | undefined,
  ) {
    super(message);
  }
}

export interface ClusterApi {
  /** The binding, or undefined if it does not exist. */
  getBinding(namespace: string, name: string): Promise<PullBinding | undefined>;
  /** Replaces `metadata.finalizers` if the binding is still at the resourceVersion read. */
  setFinalizers(binding: PullBinding, finalizers: string[]): Promise<PullBinding>;
  /** Replaces `status` through the status subresource. */
  updateStatus(binding: PullBinding, status: PullBindingStatus): Promise<void>;
  getServiceAccount(namespace: string, name: string): Promise<ServiceAccount | undefined>;
  /** Replaces the service account's `imagePullSecrets` if it is still at the resourceVersion read. */
  setImagePullSecrets(serviceAccount: ServiceAccount, secrets: Array<{ name: string }>): Promise<void>;
  getSecret(namespace: string, name: string): Promise<Secret | undefined>;
  createSecret(secret: Secret): Promise<void>;
  /** Replaces the Secret if it is still at `secret.metadata.resourceVersion`. */
  replaceSecret(secret: Secret): Promise<void>;
  /** Deletes the Secret if it still has `uid`; a Secret that is already gone is not an error. */
  deleteSecret(namespace: string, name: string, uid: string): Promise<void>;
  /** TokenRequest (`serviceaccounts/<name>/token`) for exactly this audience. */
  requestToken(namespace: string, serviceAccount: string, audience: string, expirationSeconds: number): Promise<ServiceAccountToken>;
  /** Records a core/v1 Event on the binding; repeated ones are counted, not duplicated. Never throws. */
  recordEvent(binding: PullBinding, type: EventType, reason: string, message: string): Promise<void>;
}
