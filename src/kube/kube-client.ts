/**
 * ClusterApi over @kubernetes/client-node 1.x (the generated, promise-based clients). Every call
 * touches one object; writes carry the resourceVersion that was read (merge patches with
 * `metadata.resourceVersion` are optimistic in the API server), and HTTP errors become
 * ConflictError (409) or KubeApiError with the API server's own message.
 */
import { hostname } from 'node:os';
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type KubeConfig,
  type V1Secret,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ConflictError, KubeApiError, type ClusterApi, type EventType, type Secret, type ServiceAccount, type ServiceAccountToken } from './cluster.js';
import { sha256 } from './pull-secret.js';
import { apiVersion, group, kind, plural, version, type PullBinding, type PullBindingStatus } from './types.js';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const component = 'berth-controller';

/** The API server's message out of an ApiException (its body is a Status, as JSON text or parsed). */
function statusMessage(err: ApiException<unknown>): string {
  let body: unknown = err.body;
  if (typeof body === 'string') {
    const text = body;
    try {
      body = JSON.parse(text);
    } catch {
      return text.slice(0, 300) || `HTTP ${err.code}`;
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${err.code}`;
}

/** Runs an API call and maps its failure; `undefined` for 404 when `notFound` is 'undefined'. */
async function call<T>(what: string, fn: () => Promise<T>): Promise<T>;
async function call<T>(what: string, fn: () => Promise<T>, notFound: 'undefined'): Promise<T | undefined>;
async function call<T>(what: string, fn: () => Promise<T>, notFound?: 'undefined'): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApiException) {
      const code = (err as ApiException<unknown>).code;
      if (code === 404 && notFound === 'undefined') return undefined;
      const message = `${what}: ${statusMessage(err as ApiException<unknown>)}`;
      if (code === 409) throw new ConflictError(message);
      throw new KubeApiError(message, code);
    }
    const cause = (err as { cause?: { code?: unknown } }).cause;
    throw new KubeApiError(`${what}: ${typeof cause?.code === 'string' ? cause.code : (err as Error).message}`, undefined);
  }
}

export class KubeClusterApi implements ClusterApi {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly instance = hostname();

  constructor(
    kubeConfig: KubeConfig,
    private readonly logger: Logger,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async getBinding(namespace: string, name: string): Promise<PullBinding | undefined> {
    const obj: unknown = await call(
      `get pullbinding ${namespace}/${name}`,
      () => this.custom.getNamespacedCustomObject({ group, version, namespace, plural, name }),
      'undefined',
    );
    return obj as PullBinding | undefined;
  }

  async setFinalizers(binding: PullBinding, finalizers: string[]): Promise<PullBinding> {
    const { namespace = '', name = '', resourceVersion } = binding.metadata;
    const body = { metadata: { finalizers, ...(resourceVersion !== undefined ? { resourceVersion } : {}) } };
    const obj: unknown = await call(`update finalizers of pullbinding ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObject({ group, version, namespace, plural, name, body }, mergePatch),
    );
    return obj as PullBinding;
  }

  async updateStatus(binding: PullBinding, status: PullBindingStatus): Promise<void> {
    const { namespace = '', name = '' } = binding.metadata;
    // Merge patch: `status` replaces the fields it names; conditions are one list the controller owns.
    await call(`update status of pullbinding ${namespace}/${name}`, () =>
      this.custom.patchNamespacedCustomObjectStatus({ group, version, namespace, plural, name, body: { status } }, mergePatch),
    );
  }

  async getServiceAccount(namespace: string, name: string): Promise<ServiceAccount | undefined> {
    const sa = await call(`get serviceaccount ${namespace}/${name}`, () => this.core.readNamespacedServiceAccount({ name, namespace }), 'undefined');
    return sa as ServiceAccount | undefined;
  }

  async setImagePullSecrets(serviceAccount: ServiceAccount, secrets: Array<{ name: string }>): Promise<void> {
    const { namespace = '', name = '', resourceVersion } = serviceAccount.metadata;
    const body = { metadata: { ...(resourceVersion !== undefined ? { resourceVersion } : {}) }, imagePullSecrets: secrets };
    await call(`update imagePullSecrets of serviceaccount ${namespace}/${name}`, () =>
      this.core.patchNamespacedServiceAccount({ name, namespace, body }, mergePatch),
    );
  }

  async getSecret(namespace: string, name: string): Promise<Secret | undefined> {
    const secret = await call(`get secret ${namespace}/${name}`, () => this.core.readNamespacedSecret({ name, namespace }), 'undefined');
    return secret as Secret | undefined;
  }

  async createSecret(secret: Secret): Promise<void> {
    const { namespace = '', name = '' } = secret.metadata;
    await call(`create secret ${namespace}/${name}`, () => this.core.createNamespacedSecret({ namespace, body: toV1Secret(secret) }));
  }

  async replaceSecret(secret: Secret): Promise<void> {
    const { namespace = '', name = '' } = secret.metadata;
    await call(`replace secret ${namespace}/${name}`, () => this.core.replaceNamespacedSecret({ name, namespace, body: toV1Secret(secret) }));
  }

  async deleteSecret(namespace: string, name: string, uid: string): Promise<void> {
    await call(
      `delete secret ${namespace}/${name}`,
      () => this.core.deleteNamespacedSecret({ name, namespace, body: { preconditions: { uid } } }),
      'undefined',
    );
  }

  async requestToken(namespace: string, serviceAccount: string, audience: string, expirationSeconds: number): Promise<ServiceAccountToken> {
    const request = await call(`TokenRequest for serviceaccount ${namespace}/${serviceAccount}`, () =>
      this.core.createNamespacedServiceAccountToken({
        name: serviceAccount,
        namespace,
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [audience], expirationSeconds } },
      }),
    );
    const token = request.status?.token;
    if (!token) throw new KubeApiError(`TokenRequest for serviceaccount ${namespace}/${serviceAccount} returned no token`, undefined);
    const expiry = request.status?.expirationTimestamp;
    return { token, expiresAt: expiry ? new Date(expiry).getTime() : Date.now() + expirationSeconds * 1000 };
  }

  async recordEvent(binding: PullBinding, type: EventType, reason: string, message: string): Promise<void> {
    const { namespace = '', name = '', uid = '' } = binding.metadata;
    // One Event per (binding, type, reason, message): a repeat increments its count, as kubectl shows it.
    const eventName = `${name.slice(0, 200)}.${sha256(`${uid}\n${type}\n${reason}\n${message}`).slice(0, 16)}`;
    const now = new Date();
    try {
      const event: CoreV1Event = {
        metadata: { name: eventName, namespace },
        involvedObject: {
          apiVersion,
          kind,
          name,
          namespace,
          uid,
          ...(binding.metadata.resourceVersion ? { resourceVersion: binding.metadata.resourceVersion } : {}),
        },
        reason,
        message: message.slice(0, 1024),
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component },
        reportingComponent: `${group}/controller`,
        reportingInstance: this.instance,
      };
      try {
        await call('create event', () => this.core.createNamespacedEvent({ namespace, body: event }));
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        const existing = await call('get event', () => this.core.readNamespacedEvent({ name: eventName, namespace }));
        await call('update event', () =>
          this.core.patchNamespacedEvent(
            { name: eventName, namespace, body: { count: (existing.count ?? 1) + 1, lastTimestamp: now.toISOString() } },
            mergePatch,
          ),
        );
      }
    } catch (err) {
      this.logger.debug({ err: (err as Error).message, reason }, 'could not record an event');
    }
  }
}

function toV1Secret(secret: Secret): V1Secret {
  return { apiVersion: 'v1', kind: 'Secret', ...(secret as V1Secret) };
}
