/** Lifecycle policies (`/api/v1/lifecycle…`): owner routes. Fixed paths before the `{kind}/{policy}` pattern. */
import * as lifecycle from '../handlers/admin/lifecycle.js';
import { api, type Route } from '../route.js';

const policy = 'lifecycle/(?<kind>retention|immutability|quotas)/(?<policy>[^/]+)';

export const lifecycleRoutes: readonly Route[] = [
  { name: 'lifecycle-policies', method: 'GET', path: api('lifecycle/policies'), guard: 'owner', handle: lifecycle.listPolicies },
  { name: 'lifecycle-usage', method: 'GET', path: api('lifecycle/usage'), guard: 'owner', handle: lifecycle.usage },
  { name: 'lifecycle-usage-refresh', method: 'POST', path: api('lifecycle/usage/refresh'), guard: 'owner', handle: lifecycle.refreshUsage },
  { name: 'lifecycle-runs', method: 'GET', path: api('lifecycle/runs'), guard: 'owner', handle: lifecycle.listRuns },
  { name: 'lifecycle-run', method: 'GET', path: api('lifecycle/runs/(?<id>[^/]+)'), guard: 'owner', handle: lifecycle.getRun },
  { name: 'retention-preview', method: 'POST', path: api('lifecycle/retention/preview'), guard: 'owner', handle: lifecycle.preview },
  { name: 'retention-rule-preview', method: 'POST', path: api('lifecycle/retention/(?<policy>[^/]+)/preview'), guard: 'owner', handle: lifecycle.preview },
  { name: 'retention-rule-run', method: 'POST', path: api('lifecycle/retention/(?<policy>[^/]+)/run'), guard: 'owner', handle: lifecycle.run },
  { name: 'lifecycle-policy', method: 'GET', path: api(policy), guard: 'owner', handle: lifecycle.getPolicy },
  { name: 'lifecycle-policy', method: 'PUT', path: api(policy), guard: 'owner', handle: lifecycle.putPolicy },
  { name: 'lifecycle-policy', method: 'DELETE', path: api(policy), guard: 'owner', handle: lifecycle.deletePolicy },
];
