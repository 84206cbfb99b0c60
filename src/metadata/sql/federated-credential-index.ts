import type { ClaimCondition, FederatedCredentialIndex, FederatedCredentialRecord, PrincipalWithGrants } from '../auth-store.js';
import type { Dialect } from '../migrations/columns.js';
import type { FederatedCredentialsTable } from '../schema.js';
import type { SqlContext } from './context.js';
import type { Selectable } from 'kysely';
import { preparedAll } from './prepared.js';
import { grantsColumn, grantsFromColumn, toPrincipal } from './principal-index.js';

// What every federated grant reads to find the credentials a token may match: compiled once (prepared.ts).
const credentialsOf = preparedAll((db, principalId: string) =>
  db.selectFrom('federated_credentials').selectAll().where('principal_id', '=', principalId).orderBy('name'),
);
const credentialsByIssuer = preparedAll((db, issuer: string) =>
  db.selectFrom('federated_credentials').selectAll().where('issuer', '=', issuer).orderBy('created_at'),
);
// A principal by name with its grants and its credentials for one issuer: one row per credential,
// or one row of nulls on the credential's side when it has none (a left join), so a missing
// principal is no row. The grants come as one JSON column (principal-index.ts), not as a join,
// which would repeat every credential once per grant.
function principalWithCredentialsQuery(dialect: Dialect) {
  return preparedAll((db, name: string, issuer: string) =>
    db
      .selectFrom('principals as p')
      .leftJoin('federated_credentials as c', (join) => join.onRef('c.principal_id', '=', 'p.id').on('c.issuer', '=', issuer))
      .select(['p.id', 'p.kind', 'p.name', 'p.description', 'p.disabled', 'p.expires_at', 'p.created_at'])
      .select(grantsColumn(dialect).as('grants'))
      .select([
        'c.id as c_id',
        'c.name as c_name',
        'c.issuer as c_issuer',
        'c.audiences as c_audiences',
        'c.subject as c_subject',
        'c.conditions as c_conditions',
        'c.created_at as c_created_at',
      ])
      .where('p.name', '=', name)
      .orderBy('c.name'),
  );
}
const principalWithCredentials = { sqlite: principalWithCredentialsQuery('sqlite'), postgres: principalWithCredentialsQuery('postgres') };

function toRecord(row: Selectable<FederatedCredentialsTable>): FederatedCredentialRecord {
  return {
    id: row.id,
    principalId: row.principal_id,
    name: row.name,
    issuer: row.issuer,
    audiences: JSON.parse(row.audiences) as string[],
    subject: row.subject,
    conditions: JSON.parse(row.conditions) as ClaimCondition[],
    createdAt: Number(row.created_at),
  };
}

export class SqlFederatedCredentialIndex implements FederatedCredentialIndex {
  constructor(private readonly ctx: SqlContext) {}

  async list(principalId: string): Promise<FederatedCredentialRecord[]> {
    const rows = await credentialsOf(this.ctx.db, principalId);
    return rows.map(toRecord);
  }

  async get(id: string): Promise<FederatedCredentialRecord | undefined> {
    const row = await this.ctx.db.selectFrom('federated_credentials').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toRecord(row);
  }

  async listByIssuer(issuer: string): Promise<FederatedCredentialRecord[]> {
    const rows = await credentialsByIssuer(this.ctx.db, issuer);
    return rows.map(toRecord);
  }

  async ofPrincipalNamed(name: string, issuer: string): Promise<(PrincipalWithGrants & { credentials: FederatedCredentialRecord[] }) | undefined> {
    const rows = await principalWithCredentials[this.ctx.dialect](this.ctx.db, name, issuer);
    const first = rows[0];
    if (!first) return undefined;
    const credentials: FederatedCredentialRecord[] = [];
    for (const row of rows) {
      // No credential for the issuer: the left join's one row of nulls. A credential's columns are
      // NOT NULL, so the fallbacks below only satisfy the join's nullable types.
      if (row.c_id === null) continue;
      credentials.push(
        toRecord({
          id: row.c_id,
          principal_id: row.id,
          name: row.c_name ?? '',
          issuer: row.c_issuer ?? '',
          audiences: row.c_audiences ?? '[]',
          subject: row.c_subject ?? '',
          conditions: row.c_conditions ?? '[]',
          created_at: row.c_created_at ?? 0,
        }),
      );
    }
    return { principal: toPrincipal(first), grants: grantsFromColumn(first.grants), credentials };
  }

  async put(c: FederatedCredentialRecord): Promise<string | undefined> {
    // As credentials.put: lock the existing row (PostgreSQL) and overwrite it in place, so two
    // concurrent replacements of one name serialise instead of failing on the unique key.
    return this.ctx.transaction(async (trx) => {
      const existing = trx.selectFrom('federated_credentials').select('id').where('principal_id', '=', c.principalId).where('name', '=', c.name);
      const old = await (this.ctx.dialect === 'postgres' ? existing.forUpdate() : existing).executeTakeFirst();
      const row = {
        id: c.id,
        principal_id: c.principalId,
        name: c.name,
        issuer: c.issuer,
        audiences: JSON.stringify(c.audiences),
        subject: c.subject,
        conditions: JSON.stringify(c.conditions),
        created_at: c.createdAt,
      };
      const { principal_id: _principal, name: _name, ...changed } = row;
      await trx
        .insertInto('federated_credentials')
        .values(row)
        .onConflict((oc) => oc.columns(['principal_id', 'name']).doUpdateSet(changed))
        .execute();
      return old?.id;
    });
  }

  /** One statement, so of two concurrent removals only one reports the removed id. */
  async remove(principalId: string, name: string): Promise<string | undefined> {
    const old = await this.ctx.db
      .deleteFrom('federated_credentials')
      .where('principal_id', '=', principalId)
      .where('name', '=', name)
      .returning('id')
      .executeTakeFirst();
    return old?.id;
  }
}
