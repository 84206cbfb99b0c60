/**
 * A throwaway cluster API for trying the controller by hand: etcd + kube-apiserver (as the tests
 * start them, on free loopback ports), the CRD and RBAC from deploy/kubernetes applied, anonymous
 * access to the service-account issuer's discovery document. Prints what to pass to Berth and to
 * `berth controller`; Ctrl-C stops everything and removes its data.
 *
 *   bash scripts/kube-apiserver/build.sh            # once, about 5 minutes
 *   node --import tsx scripts/kube-apiserver/start.ts
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../../test/support/berth-process.js';
import { startKubeApiServer } from '../../test/support/kube-apiserver.js';

const kube = await startKubeApiServer({ anonymousDiscovery: true });
const deploy = join(REPO_ROOT, 'deploy', 'kubernetes');
await kube.apply(join(deploy, 'crd.yaml'));
await kube.apply(join(deploy, 'rbac.yaml'));
process.stdout.write(
  [
    `kube-apiserver ${kube.url} (v1.20.2)`,
    `  export KUBECONFIG=${kube.kubeconfigPath}      # admin; kubectl works with it`,
    `  service-account issuer: ${kube.issuer}`,
    `  Berth config: federation.issuers: [{issuer: ${kube.issuer}, caFile: ${kube.caFile}}]`,
    `  then: berth controller --kubeconfig ${kube.kubeconfigPath} --allowed-registry 127.0.0.1:5000`,
    'Ctrl-C stops it.',
    '',
  ].join('\n'),
);
const stop = () => void kube.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => undefined, 1 << 30);
