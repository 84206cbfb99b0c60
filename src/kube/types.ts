/**
 * The `PullBinding` resource (`berth.dev/v1`, namespaced, short name `pb`) and the names the
 * controller writes into the cluster. Modelled on msi-acrpull's `AcrPullBinding` v1beta2: a
 * workload identity (a service account whose token Berth federates) is turned into registry
 * credentials, kept in a `kubernetes.io/dockerconfigjson` Secret that another service account
 * uses as an image pull secret.
 *
 * deploy/kubernetes/crd.yaml is the same shape as an OpenAPI v3 schema; keep the two in step.
 */

export const group = 'berth.dev';
export const version = 'v1';
export const apiVersion = `${group}/${version}`;
export const kind = 'PullBinding';
export const plural = 'pullbindings';

/** On every binding the controller has seen: the Secret and the pull-secret entry are removed first. */
export const finalizer = 'berth.dev/pull-secret';

/** Labels and annotations on the Secret. None carries anything secret. */
export const labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  /** The binding's uid: names can be longer than a label value may be. */
  bindingUid: 'berth.dev/binding-uid',
} as const;
export const managedByValue = 'berth-controller';

export const annotations = {
  /** When the credentials in the Secret stop working (RFC 3339). */
  expiresAt: 'berth.dev/expires-at',
  /** When they were issued (RFC 3339). */
  refreshedAt: 'berth.dev/refreshed-at',
  /** When the controller will replace them (RFC 3339). */
  refreshAt: 'berth.dev/refresh-at',
  /** sha256 of everything the credentials depend on (server, scopes, identity, audience). */
  inputsHash: 'berth.dev/inputs-hash',
  /** The service account whose `imagePullSecrets` lists the Secret (to undo it when the spec changes). */
  serviceAccount: 'berth.dev/service-account',
  /** The binding, `namespace/name`, for people reading the Secret. */
  binding: 'berth.dev/binding',
} as const;

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  deletionTimestamp?: Date | string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface PullBindingSpec {
  registry: {
    /** `host[:port]` of the Berth registry. */
    server: string;
    /** One or more `repository:<name>:pull`. */
    scopes: string[];
  };
  auth: {
    workloadIdentity: {
      /** The service account (in the binding's namespace) whose token is exchanged. */
      serviceAccountRef: string;
    };
    /** The Berth principal (service principal's client id); without it Berth finds the one that matches. */
    clientId?: string;
  };
  /** The service account that receives the pull secret (default `default`). */
  serviceAccountName?: string;
}

export type ConditionType = 'Ready' | 'TokenRefreshFailed' | 'ExpiringSoon';
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** A Kubernetes-style condition (metav1.Condition). */
export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  /** CamelCase, machine-readable. */
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface PullBindingStatus {
  conditions?: Condition[];
  lastTokenRefreshTime?: string;
  tokenExpirationTime?: string;
  observedGeneration?: number;
  /** The Secret the controller manages for this binding. */
  secretName?: string;
}

export interface PullBinding {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: PullBindingSpec;
  status?: PullBindingStatus;
}

/** The reasons conditions carry, in one place so docs and tests name the same strings. */
export const reasons = {
  refreshed: 'TokenRefreshed',
  invalidSpec: 'InvalidSpec',
  serverNotAllowed: 'RegistryServerNotAllowed',
  serviceAccountToken: 'ServiceAccountTokenFailed',
  exchangeRefused: 'ExchangeRefused',
  registryUnreachable: 'RegistryUnreachable',
  scopesNotGranted: 'ScopesNotGranted',
  secretConflict: 'SecretConflict',
  targetServiceAccountMissing: 'ServiceAccountNotFound',
  kubernetesError: 'KubernetesAPIError',
  refreshSucceeded: 'RefreshSucceeded',
  notExpiring: 'NotExpiring',
  expiringSoon: 'RefreshOverdue',
  expired: 'Expired',
  noCredentials: 'NoCredentials',
} as const;

export const defaultServiceAccountName = 'default';

/** `namespace/name`, the work queue's key. */
export function keyOf(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const slash = key.indexOf('/');
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
