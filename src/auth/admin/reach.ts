/**
 * "Who can push here": every principal whose grants reach one repository, what those grants give
 * there together (the same `allowedOnRepository` the token endpoint grants by), and the federated
 * credentials through which a workload may act as each of them; plus whether the anonymous-pull
 * policy covers the repository. A read for owners (`GET /api/v1/repositories/{name}/access`).
 */
import type { RepositoryAccessView } from '../../api/repositories.js';
import type { AuthMetadata } from '../../metadata/auth-store.js';
import { expand } from '../access.js';
import { allowedOnRepository, anonymousPullGrants, matchesPattern } from '../permissions.js';
import type { PrincipalService } from '../principals.js';

export class RepositoryReach {
  constructor(
    private readonly store: Pick<AuthMetadata, 'principals' | 'federatedCredentials' | 'anonymousPull'>,
    private readonly principals: PrincipalService,
  ) {}

  /** Principals that may do anything on `repository`, those who may push first, then by name. */
  async of(repository: string): Promise<RepositoryAccessView> {
    const out: RepositoryAccessView['principals'] = [];
    for (const principal of await this.store.principals.list()) {
      const grants = (await this.principals.grantsFor(principal)).filter((g) => matchesPattern(g.pattern, repository));
      if (grants.length === 0) continue;
      const actions = allowedOnRepository(grants, repository);
      const mayPush = expand(actions).has('push');
      const credentials = principal.kind === 'service' ? await this.store.federatedCredentials.list(principal.id) : [];
      out.push({
        id: principal.id,
        name: principal.name,
        kind: principal.kind,
        disabled: principal.disabled,
        grants: grants.map((g) => ({ pattern: g.pattern, permission: g.permission })),
        actions: [...expand(actions)].sort(),
        mayPush,
        federatedCredentials: credentials.map((c) => ({ name: c.name, issuer: c.issuer, subject: c.subject, audiences: c.audiences })),
      });
    }
    out.sort((a, b) => Number(b.mayPush) - Number(a.mayPush) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const anonymous = anonymousPullGrants(await this.store.anonymousPull.list());
    return { repository, anonymousPull: allowedOnRepository(anonymous, repository).length > 0, principals: out };
  }
}
