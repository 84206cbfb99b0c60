/**
 * The pull-secret controller: three watches feed one keyed work queue, N workers reconcile.
 *
 * - PullBindings (all namespaces, or one): every event enqueues `namespace/name`.
 * - Secrets labelled `app.kubernetes.io/managed-by=berth-controller`: an event enqueues the binding
 *   named by the Secret's controller owner reference (a deleted or edited Secret is put back).
 * - ServiceAccounts: an event enqueues the bindings in that namespace that name the account, as the
 *   token source or the pull-secret target (an `imagePullSecrets` edit that dropped the entry is undone,
 *   an account created late gets it).
 *
 * Events carry no meaning beyond "look at this key": reconcile re-reads everything. A reconcile
 * that succeeds is requeued at its refresh time; one that fails is retried with per-key
 * exponential backoff. Watches that fail are restarted after a pause (the informer re-lists).
 */
import { CustomObjectsApi, CoreV1Api, ListWatch, Watch, type KubeConfig, type KubernetesObject, type KubernetesListObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ClusterApi } from './cluster.js';
import type { Exchanger } from './exchange.js';
import type { ControllerMetrics } from './metrics.js';
import { Reconciler, type ReconcilerOptions } from './reconcile.js';
import { defaultServiceAccountName, group, keyOf, kind, labels, managedByValue, plural, version, type PullBindingSpec } from './types.js';
import { WorkQueue, type BackoffOptions } from './work-queue.js';

export interface ControllerOptions extends ReconcilerOptions {
  /** Watch only this namespace (default: all). */
  namespace: string | undefined;
  /** Keys reconciled in parallel. */
  workers: number;
  backoff: BackoffOptions;
  /** Pause before restarting a failed watch (ms). */
  watchRestartMs: number;
}

export interface ControllerDeps {
  kubeConfig: KubeConfig;
  api: ClusterApi;
  exchange: Exchanger;
  metrics: ControllerMetrics;
  logger: Logger;
  now?: () => number;
}

type Informer<T extends KubernetesObject> = ListWatch<T>;
/** A binding as the watch delivers it: nothing in it is trusted beyond the key (reconcile re-reads and validates). */
type BindingObject = KubernetesObject & { spec?: Partial<Omit<PullBindingSpec, 'auth'>> & { auth?: { workloadIdentity?: { serviceAccountRef?: string } } } };

export class Controller {
  readonly queue: WorkQueue;
  private readonly reconciler: Reconciler;
  private readonly informers: Array<Informer<KubernetesObject>> = [];
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Every watch has listed at least once. */
  private synced = false;

  constructor(
    private readonly options: ControllerOptions,
    private readonly deps: ControllerDeps,
  ) {
    this.queue = new WorkQueue(options.backoff);
    this.reconciler = new Reconciler({
      api: deps.api,
      exchange: deps.exchange,
      now: deps.now ?? Date.now,
      options,
      metrics: deps.metrics,
      logger: deps.logger,
    });
  }

  /** True once every watch has listed (for /healthz). */
  get ready(): boolean {
    return this.synced && !this.stopped;
  }

  /** Starts the watches and the workers; resolves once the watches have listed. */
  async start(): Promise<void> {
    const { kubeConfig } = this.deps;
    const watch = new Watch(kubeConfig);
    const custom = kubeConfig.makeApiClient(CustomObjectsApi);
    const core = kubeConfig.makeApiClient(CoreV1Api);
    const ns = this.options.namespace;

    const bindingPath = ns ? `/apis/${group}/${version}/namespaces/${ns}/${plural}` : `/apis/${group}/${version}/${plural}`;
    const listBindings = async (): Promise<KubernetesListObject<BindingObject>> =>
      (ns
        ? await custom.listNamespacedCustomObject({ group, version, namespace: ns, plural })
        : await custom.listClusterCustomObject({ group, version, plural })) as KubernetesListObject<BindingObject>;
    const bindings = new ListWatch<BindingObject>(bindingPath, watch, listBindings, false);
    const enqueueBinding = (obj: BindingObject) => this.enqueue(obj.metadata?.namespace, obj.metadata?.name);
    bindings.on('add', enqueueBinding);
    bindings.on('update', enqueueBinding);
    bindings.on('delete', enqueueBinding);

    const selector = `${labels.managedBy}=${managedByValue}`;
    const secretPath = ns ? `/api/v1/namespaces/${ns}/secrets` : '/api/v1/secrets';
    const listSecrets = async () =>
      (ns
        ? await core.listNamespacedSecret({ namespace: ns, labelSelector: selector })
        : await core.listSecretForAllNamespaces({ labelSelector: selector })) as KubernetesListObject<KubernetesObject>;
    const secrets = new ListWatch<KubernetesObject>(secretPath, watch, listSecrets, false, selector);
    const enqueueOwner = (obj: KubernetesObject) => {
      for (const ref of obj.metadata?.ownerReferences ?? []) {
        if (ref.kind === kind && ref.apiVersion === `${group}/${version}` && ref.controller) this.enqueue(obj.metadata?.namespace, ref.name);
      }
    };
    for (const verb of ['add', 'update', 'delete'] as const) secrets.on(verb, enqueueOwner);

    const saPath = ns ? `/api/v1/namespaces/${ns}/serviceaccounts` : '/api/v1/serviceaccounts';
    const listServiceAccounts = async () =>
      (ns
        ? await core.listNamespacedServiceAccount({ namespace: ns })
        : await core.listServiceAccountForAllNamespaces()) as KubernetesListObject<KubernetesObject>;
    const serviceAccounts = new ListWatch<KubernetesObject>(saPath, watch, listServiceAccounts, false);
    const enqueueUsers = (obj: KubernetesObject) => {
      const namespace = obj.metadata?.namespace;
      const name = obj.metadata?.name;
      if (!namespace || !name) return;
      for (const binding of bindings.list(namespace)) {
        const target = binding.spec?.serviceAccountName ?? defaultServiceAccountName;
        if (target === name || binding.spec?.auth?.workloadIdentity?.serviceAccountRef === name) this.enqueue(namespace, binding.metadata?.name);
      }
    };
    for (const verb of ['add', 'update', 'delete'] as const) serviceAccounts.on(verb, enqueueUsers);

    this.running = this.queue.run(this.options.workers, (key) => this.process(key));
    const all = [bindings, secrets, serviceAccounts] as Array<Informer<KubernetesObject>>;
    for (const informer of all) {
      informer.on('error', (err: unknown) => this.restartLater(informer, err));
      this.informers.push(informer);
    }
    await Promise.all(all.map((informer) => informer.start()));
    this.synced = true;
    this.deps.logger.info({ namespace: ns ?? '(all)', workers: this.options.workers }, 'controller started');
  }

  /** Stops watching, lets in-flight reconciles finish, and drops everything queued. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const timer of this.restartTimers) clearTimeout(timer);
    await Promise.all(this.informers.map((informer) => informer.stop()));
    this.queue.shutDown();
    await this.running;
    this.deps.logger.info('controller stopped');
  }

  /** Reconciles one key now (tests, and the queue's workers). */
  reconcile(key: string) {
    return this.reconciler.reconcile(key);
  }

  private enqueue(namespace: string | undefined, name: string | undefined): void {
    if (namespace && name) this.queue.add(keyOf(namespace, name));
  }

  private async process(key: string): Promise<void> {
    let result;
    try {
      result = await this.reconciler.reconcile(key);
    } catch (err) {
      const delay = this.queue.addRateLimited(key);
      this.deps.metrics.reconciles.inc({ result: 'error' });
      this.deps.logger.warn({ binding: key, err: (err as Error).message, retryInMs: delay }, 'reconcile error; retrying');
      return;
    }
    if (result.retry) {
      const delay = this.queue.addRateLimited(key);
      this.deps.logger.debug({ binding: key, retryInMs: delay }, 'retrying with backoff');
      return;
    }
    this.queue.forget(key);
    if (result.requeueAfterMs !== undefined) this.queue.addAfter(key, result.requeueAfterMs);
  }

  private restartLater(informer: Informer<KubernetesObject>, err: unknown): void {
    if (this.stopped) return;
    this.deps.logger.warn({ err: (err as Error)?.message ?? String(err) }, 'watch failed; restarting');
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (!this.stopped) void informer.start().catch(() => undefined);
    }, this.options.watchRestartMs);
    this.restartTimers.add(timer);
  }
}
