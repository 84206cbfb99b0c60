/**
 * Level-based reconcile of one PullBinding: read the binding, its Secret and the service accounts,
 * compare with what they should be, write the difference, and say when to look again. It never
 * knows which event brought the key here; deleting, creating, a spec change, an expiring token, a
 * restart of the controller and a tampered Secret all end in the same comparison.
 *
 *   binding gone                        -> nothing (the Secret is garbage-collected by its owner reference)
 *   binding being deleted               -> take the Secret off the service account, delete it, drop the finalizer
 *   spec invalid / server not allowed   -> condition with the reason; nothing minted
 *   Secret missing, inputs changed, or refresh time reached
 *                                       -> TokenRequest (the configured audience, else the registry's) -> Berth exchange -> write Secret
 *   target service account lacks the entry -> add it (other entries untouched)
 *   -> status (only if it changed), requeue at the refresh time
 *
 * Failures set the conditions (Ready False with the reason, TokenRefreshFailed True), record a
 * Warning Event and return `retry` so the queue backs off; credentials already in the Secret stay
 * until they expire.
 */
import type { Logger } from 'pino';
import { ConflictError, KubeApiError, type ClusterApi, type Secret, type ServiceAccount } from './cluster.js';
import { advertisedAudience, ExchangeError, type AudienceLookup, type Exchanger } from './exchange.js';
import type { ControllerMetrics } from './metrics.js';
import { buildSecret, inputsHash, ownedBy, readSecretState, refreshTime, sha256, withoutPullSecret, withPullSecret, type SecretState } from './pull-secret.js';
import { mergeConditions, rfc3339, sameJson, type ConditionInput } from './status.js';
import {
  defaultServiceAccountName,
  finalizer,
  keyOf,
  kind,
  labels,
  managedByValue,
  reasons,
  splitKey,
  type PullBinding,
  type PullBindingStatus,
} from './types.js';
import { isServiceAccountName, secretNameFor, serverAllowed, SpecError, validateSpec, type ValidBinding } from './validation.js';

export interface ReconcilerOptions {
  /** The only audience service-account tokens are requested for; undefined: the one the registry advertises. */
  audience: string | undefined;
  /** TokenRequest `expirationSeconds` (Kubernetes' minimum is 600). */
  tokenExpirationSeconds: number;
  /** Replace credentials once this fraction of their lifetime has passed. */
  refreshFraction: number;
  /** Registry servers bindings may name (`host[:port]` or `*.domain`). */
  allowedServers: readonly string[];
  /** Look at a binding at least this often, also when nothing is due (ms). */
  resyncMs: number;
}

export interface ReconcileResult {
  /** Reconcile again after this long (ms). */
  requeueAfterMs?: number;
  /** Something failed that may pass later: retry with backoff. */
  retry?: boolean;
}

export interface ReconcilerDeps {
  api: ClusterApi;
  exchange: Exchanger;
  /** The audience a registry advertises (exchange.ts `advertisedAudience`), asked when `options.audience` is unset. */
  audienceOf?: AudienceLookup;
  now: () => number;
  options: ReconcilerOptions;
  metrics: ControllerMetrics;
  logger: Logger;
}

/** A failure with its condition reason, raised inside reconcile and turned into status once. */
class Failure extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** Retry with backoff (else: wait for a change, or the resync). */
    readonly retry: boolean,
    /** The failure is about fresh credentials (TokenRefreshFailed), not about placing them. */
    readonly refresh = true,
  ) {
    super(message);
  }
}

export class Reconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<ReconcileResult> {
    const { namespace, name } = splitKey(key);
    const { api, metrics } = this.deps;
    let binding = await api.getBinding(namespace, name);
    if (!binding) {
      metrics.forget(key);
      return {};
    }
    if (binding.metadata.deletionTimestamp) {
      await this.finalize(binding);
      metrics.forget(key);
      return {};
    }
    const finalizers = binding.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) binding = await api.setFinalizers(binding, [...finalizers, finalizer]);

    const secretName = secretNameFor(binding, sha256);
    let state: SecretState | undefined;
    try {
      const secret = await api.getSecret(namespace, secretName);
      state = secret && ownedBy(secret, binding) ? readSecretState(secret) : undefined;
      const valid = this.validate(binding);
      if (secret && !state && !orphanOfSameName(secret, binding)) {
        throw new Failure(reasons.secretConflict, `Secret ${secretName} exists and is not owned by this binding; delete or rename it`, false);
      }
      // The target service account changed: take the Secret off the previous one first.
      if (state?.serviceAccount && state.serviceAccount !== valid.targetServiceAccount) {
        await this.removePullSecret(namespace, state.serviceAccount, secretName);
      }
      // Unset: whatever the registry advertises, which is asked only when credentials are due.
      const hash = inputsHash(valid, this.deps.options.audience ?? 'advertised');
      const now = this.deps.now();
      let current = state;
      if (!state || state.inputsHash !== hash || state.refreshAt === undefined || now >= state.refreshAt || !state.hasCredentialsFor(valid.server)) {
        current = await this.refresh(binding, secretName, valid, hash, secret);
      }
      await this.addPullSecret(namespace, valid.targetServiceAccount, secretName);
      const expiresAt = current?.expiresAt ?? now;
      const refreshAt = current?.refreshAt ?? now;
      metrics.trackExpiry(key, expiresAt);
      await this.writeStatus(binding, secretName, current, [
        {
          type: 'Ready',
          status: 'True',
          reason: reasons.refreshed,
          message: `Secret ${secretName} holds credentials for ${valid.server} (${valid.scopes.join(' ')}), on service account ${valid.targetServiceAccount}`,
        },
        { type: 'TokenRefreshFailed', status: 'False', reason: reasons.refreshSucceeded, message: 'the last refresh succeeded' },
        {
          type: 'ExpiringSoon',
          status: 'False',
          reason: reasons.notExpiring,
          message: `credentials expire at ${rfc3339(expiresAt)} and are replaced at ${rfc3339(refreshAt)}`,
        },
      ]);
      metrics.reconciles.inc({ result: 'success' });
      const due = Math.max(1000, refreshAt - this.deps.now());
      return { requeueAfterMs: Math.min(due, this.deps.options.resyncMs) };
    } catch (err) {
      const failure = this.classify(err);
      if (!failure) throw err;
      return this.fail(key, binding, secretName, state, failure);
    }
  }

  /** Validated spec and the allow-list; a SpecError becomes InvalidSpec. */
  private validate(binding: PullBinding): ValidBinding {
    let valid: ValidBinding;
    try {
      valid = validateSpec(binding.spec);
    } catch (err) {
      if (err instanceof SpecError) throw new Failure(reasons.invalidSpec, err.message, false);
      throw err;
    }
    if (!serverAllowed(valid.server, this.deps.options.allowedServers)) {
      throw new Failure(
        reasons.serverNotAllowed,
        `registry server ${valid.server} is not in the controller's allow-list (--allowed-registry); service-account tokens are sent only to allowed registries`,
        false,
      );
    }
    return valid;
  }

  /** TokenRequest -> exchange -> Secret. Returns the state of the Secret written. */
  private async refresh(
    binding: PullBinding,
    secretName: string,
    valid: ValidBinding,
    hash: string,
    existing: { metadata: { resourceVersion?: string } } | undefined,
  ): Promise<SecretState> {
    const { api, options } = this.deps;
    const namespace = binding.metadata.namespace ?? '';
    const audience = options.audience ?? (await this.audienceOf(valid.server));
    let token;
    try {
      token = await api.requestToken(namespace, valid.tokenServiceAccount, audience, options.tokenExpirationSeconds);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) {
        throw new Failure(
          reasons.serviceAccountToken,
          `service account ${namespace}/${valid.tokenServiceAccount} (spec.auth.workloadIdentity.serviceAccountRef) does not exist`,
          true,
        );
      }
      if (err instanceof KubeApiError) {
        throw new Failure(reasons.serviceAccountToken, `TokenRequest for ${namespace}/${valid.tokenServiceAccount} failed: ${err.message}`, true);
      }
      throw err;
    }
    let credentials;
    try {
      credentials = await this.deps.exchange(valid.server, token.token, valid.clientId, valid.scopes);
    } catch (err) {
      if (err instanceof ExchangeError) {
        throw new Failure(err.failure === 'refused' ? reasons.exchangeRefused : reasons.registryUnreachable, err.message, true);
      }
      throw err;
    }
    if (credentials.missing.length > 0) {
      const who = valid.clientId ?? `the principal trusting system:serviceaccount:${namespace}:${valid.tokenServiceAccount}`;
      throw new Failure(
        reasons.scopesNotGranted,
        `Berth does not grant ${credentials.missing.join(' ')} to ${who}${credentials.granted.length > 0 ? ` (granted: ${credentials.granted.join(' ')})` : ''}; grant pull on it or remove the scope`,
        true,
      );
    }
    const refreshAt = refreshTime(credentials.issuedAt, credentials.expiresAt, options.refreshFraction);
    const secret = buildSecret({ binding, name: secretName, valid, credentials, hash, refreshAt });
    if (existing) {
      secret.metadata.resourceVersion = existing.metadata.resourceVersion ?? '';
      await api.replaceSecret(secret);
    } else {
      await api.createSecret(secret);
    }
    this.deps.metrics.refreshes.inc();
    this.deps.logger.info(
      { binding: keyOf(namespace, binding.metadata.name ?? ''), secret: secretName, expiresAt: rfc3339(credentials.expiresAt), refreshAt: rfc3339(refreshAt) },
      'pull secret refreshed',
    );
    await api.recordEvent(binding, 'Normal', reasons.refreshed, `wrote fresh registry credentials for ${valid.server} to Secret ${secretName}`);
    return readSecretState(secret);
  }

  /** The audience the registry advertises, for a controller without a configured one. */
  private async audienceOf(server: string): Promise<string> {
    try {
      return await (this.deps.audienceOf ?? advertisedAudience)(server);
    } catch (err) {
      if (err instanceof ExchangeError) throw new Failure(err.failure === 'refused' ? reasons.exchangeRefused : reasons.registryUnreachable, err.message, true);
      throw err;
    }
  }

  private async addPullSecret(namespace: string, serviceAccountName: string, secretName: string): Promise<void> {
    const serviceAccount = await this.deps.api.getServiceAccount(namespace, serviceAccountName);
    if (!serviceAccount) {
      throw new Failure(
        reasons.targetServiceAccountMissing,
        `service account ${namespace}/${serviceAccountName} (spec.serviceAccountName) does not exist; Secret ${secretName} is added to it once it does`,
        false,
        false,
      );
    }
    const next = withPullSecret(serviceAccount.imagePullSecrets, secretName);
    if (next) await this.deps.api.setImagePullSecrets(serviceAccount, next);
  }

  private async removePullSecret(namespace: string, serviceAccountName: string, secretName: string): Promise<void> {
    const serviceAccount: ServiceAccount | undefined = await this.deps.api.getServiceAccount(namespace, serviceAccountName);
    if (!serviceAccount) return;
    const next = withoutPullSecret(serviceAccount.imagePullSecrets, secretName);
    if (next) await this.deps.api.setImagePullSecrets(serviceAccount, next);
  }

  /** The finalizer's work: nothing the binding made survives it. */
  private async finalize(binding: PullBinding): Promise<void> {
    const finalizers = binding.metadata.finalizers ?? [];
    if (!finalizers.includes(finalizer)) return;
    const { api } = this.deps;
    const namespace = binding.metadata.namespace ?? '';
    const secretName = binding.status?.secretName ?? secretNameFor(binding, sha256);
    const secret = await api.getSecret(namespace, secretName);
    const owned = secret && ownedBy(secret, binding) ? secret : undefined;
    const serviceAccounts = new Set<string>();
    const recorded = owned ? readSecretState(owned).serviceAccount : undefined;
    if (recorded) serviceAccounts.add(recorded);
    const target = binding.spec?.serviceAccountName;
    // An invalid name was never used (the spec was refused), and must not block the deletion.
    serviceAccounts.add(target === undefined ? defaultServiceAccountName : isServiceAccountName(target) ? target : '');
    serviceAccounts.delete('');
    // Only remove the entry if the Secret it names is ours (or already gone): never another's.
    if (owned || !secret) for (const serviceAccount of serviceAccounts) await this.removePullSecret(namespace, serviceAccount, secretName);
    if (owned) await api.deleteSecret(namespace, secretName, owned.metadata.uid ?? '');
    await api.setFinalizers(
      binding,
      finalizers.filter((f) => f !== finalizer),
    );
    this.deps.logger.info({ binding: keyOf(namespace, binding.metadata.name ?? ''), secret: secretName }, 'binding deleted: pull secret removed');
  }

  private classify(err: unknown): Failure | undefined {
    if (err instanceof Failure) return err;
    if (err instanceof ConflictError) return undefined; // a fresh read sorts it out: plain retry
    if (err instanceof KubeApiError) return new Failure(reasons.kubernetesError, err.message, true);
    return undefined;
  }

  private async fail(key: string, binding: PullBinding, secretName: string, state: SecretState | undefined, failure: Failure): Promise<ReconcileResult> {
    const { metrics, api, logger } = this.deps;
    const now = this.deps.now();
    metrics.reconciles.inc({ result: 'failure' });
    if (failure.refresh) metrics.failures.inc({ reason: failure.reason });
    if (state?.expiresAt !== undefined) metrics.trackExpiry(key, state.expiresAt);
    logger.warn({ binding: key, reason: failure.reason, message: failure.message }, 'reconcile failed');
    const conditions: ConditionInput[] = [
      { type: 'Ready', status: 'False', reason: failure.reason, message: failure.message },
      failure.refresh
        ? { type: 'TokenRefreshFailed', status: 'True', reason: failure.reason, message: failure.message }
        : { type: 'TokenRefreshFailed', status: 'False', reason: reasons.refreshSucceeded, message: 'the last refresh succeeded' },
      this.expiring(state, now),
    ];
    await api.recordEvent(binding, 'Warning', failure.reason, failure.message);
    try {
      await this.writeStatus(binding, secretName, state, conditions);
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof KubeApiError)) throw err;
    }
    if (failure.retry) return { retry: true };
    return { requeueAfterMs: this.deps.options.resyncMs };
  }

  /** ExpiringSoon after a failure: the credentials in the Secret, if any, and how long they last. */
  private expiring(state: SecretState | undefined, now: number): ConditionInput {
    if (state?.expiresAt === undefined) {
      return { type: 'ExpiringSoon', status: 'Unknown', reason: reasons.noCredentials, message: 'no credentials have been written yet' };
    }
    if (state.expiresAt <= now) {
      return { type: 'ExpiringSoon', status: 'True', reason: reasons.expired, message: `the credentials in the Secret expired at ${rfc3339(state.expiresAt)}` };
    }
    if (state.refreshAt !== undefined && now >= state.refreshAt) {
      return {
        type: 'ExpiringSoon',
        status: 'True',
        reason: reasons.expiringSoon,
        message: `the credentials in the Secret expire at ${rfc3339(state.expiresAt)} and could not be replaced since ${rfc3339(state.refreshAt)}`,
      };
    }
    return { type: 'ExpiringSoon', status: 'False', reason: reasons.notExpiring, message: `credentials expire at ${rfc3339(state.expiresAt)}` };
  }

  private async writeStatus(binding: PullBinding, secretName: string, state: SecretState | undefined, updates: ConditionInput[]): Promise<void> {
    const previous = binding.status ?? {};
    const generation = binding.metadata.generation;
    const status: PullBindingStatus = {
      conditions: mergeConditions(previous.conditions, updates, generation, this.deps.now()),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      secretName,
    };
    const refreshedAt = state?.refreshedAt ?? parseTime(previous.lastTokenRefreshTime);
    const expiresAt = state?.expiresAt ?? parseTime(previous.tokenExpirationTime);
    if (refreshedAt !== undefined) status.lastTokenRefreshTime = rfc3339(refreshedAt);
    if (expiresAt !== undefined) status.tokenExpirationTime = rfc3339(expiresAt);
    if (sameJson(status, previous)) return;
    await this.deps.api.updateStatus(binding, status);
  }
}

/**
 * A Secret this controller made for an earlier binding of the same name whose finalizer was
 * removed by force (so the Secret outlived it): the new binding takes it over.
 */
function orphanOfSameName(secret: Secret, binding: PullBinding): boolean {
  const refs = secret.metadata.ownerReferences ?? [];
  return (
    secret.metadata.labels?.[labels.managedBy] === managedByValue &&
    refs.length > 0 &&
    refs.every((ref) => ref.kind === kind && ref.name === binding.metadata.name && ref.uid !== binding.metadata.uid)
  );
}

function parseTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  return Number.isFinite(ms) ? ms : undefined;
}
