import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DesiredStateError, formatChange, parseDesiredState, plan, type ObservedPrincipal, type ObservedState } from './desired-state.js';

/** The audience the registry advertises: presets without `audiences` get it. */
const registryAudience = 'https://registry.example.com';

const example = `
prune: true
settings:
  anonymousPull: [public/**]
users:
  - name: alice
    description: Alice
    grants:
      team-a/**: push
      team-b/**: [pull, metadata/read]
  - name: bob
    disabled: true
services:
  - name: ci-pusher
    grants:
      - { pattern: team-a/app, permission: push }
tokens:
  - name: ci-reader
    expiresAt: 2031-01-01T00:00:00Z
    grants:
      vendor/**: [content/read, metadata/read]
`;

function observed(principals: Array<Partial<ObservedPrincipal> & { name: string }>, anonymousPull: string[] = []): ObservedState {
  return {
    principals: principals.map((p) => ({ kind: 'user', description: null, disabled: false, expiresAt: null, grants: [], ...p })),
    anonymousPull,
  };
}

/** What the server would hold after applying `desired` exactly. */
function applied(text: string, extra: Array<Partial<ObservedPrincipal> & { name: string }> = []): ObservedState {
  const desired = parseDesiredState(text, 'berth.yaml', registryAudience);
  return observed(
    [
      ...extra,
      ...desired.principals.map((p) => ({
        kind: p.kind,
        name: p.name,
        description: p.description ?? null,
        disabled: p.disabled,
        expiresAt: typeof p.expiresAt === 'number' ? new Date(p.expiresAt).toISOString() : null,
        grants: [...p.grants].reverse(),
      })),
    ],
    desired.anonymousPull ?? [],
  );
}

describe('parseDesiredState', () => {
  it('reads users, services and tokens with grants as a scope map or a list, sorted', () => {
    const state = parseDesiredState(example, 'berth.yaml', registryAudience);
    assert.equal(state.prune, true);
    assert.deepEqual(state.anonymousPull, ['public/**']);
    assert.deepEqual(
      state.principals.map((p) => [p.kind, p.name]),
      [
        ['user', 'alice'],
        ['user', 'bob'],
        ['service', 'ci-pusher'],
        ['token', 'ci-reader'],
      ],
    );
    const alice = state.principals[0];
    assert.deepEqual(alice?.grants, [
      { pattern: 'team-a/**', permission: 'push' },
      { pattern: 'team-b/**', permission: 'metadata/read' },
      { pattern: 'team-b/**', permission: 'pull' },
    ]);
    assert.equal(alice?.description, 'Alice');
    assert.equal(alice?.disabled, false);
    assert.equal(alice?.expiresAt, undefined, 'omitted: not managed');
    assert.equal(state.principals[1]?.disabled, true);
    assert.deepEqual(state.principals[1]?.grants, [], 'omitted grants: none');
    assert.equal(state.principals[3]?.expiresAt, Date.parse('2031-01-01T00:00:00Z'));
  });

  it('treats an empty file as declaring nothing, without pruning', () => {
    assert.deepEqual(parseDesiredState('', 'berth.yaml', registryAudience), { prune: false, principals: [], anonymousPull: undefined });
  });

  it('names the file and the path of the first bad value', () => {
    const cases: Array<[string, RegExp]> = [
      ['users:\n  - name: a\n    grants:\n      team/**: pusher\n', /^f\.yaml: users\.0\.grants\.team\/\*\*: unknown permission "pusher"/],
      ['users:\n  - name: a\n    grants:\n      Team/**: push\n', /users\.0\.grants\.Team\/\*\*: invalid repository pattern/],
      ['tokens:\n  - name: t\n    grants: [{pattern: x, permission: owner, extra: 1}]\n', /Unrecognized key/],
      ['users:\n  - name: -a\n', /users\.0\.name: a name is/],
      ['users:\n  - name: a\n    expiresAt: soon\n', /expiresAt: expected an ISO 8601 date/],
      ['groups: []\n', /Unrecognized key.*groups/],
      ['settings:\n  anonymousPull: [UPPER]\n', /settings\.anonymousPull\.0: invalid repository pattern/],
      ['users: [{name: a}]\ntokens: [{name: a}]\n', /a is declared twice/],
      ['users: [\n', /^f\.yaml \(line \d+\): not valid YAML/],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseDesiredState(text, 'f.yaml', registryAudience),
        (err: unknown) => err instanceof DesiredStateError && message.test(err.message),
        text,
      );
    }
  });
});

describe('plan', () => {
  it('creates everything on an empty registry, in file order, then settings', () => {
    const { changes } = plan(parseDesiredState(example, 'berth.yaml', registryAudience), observed([]));
    assert.deepEqual(changes.map(formatChange), [
      '+ create user alice: push on team-a/**, metadata/read on team-b/**, pull on team-b/**',
      '+ create user bob (disabled)',
      '+ create service ci-pusher: push on team-a/app',
      '+ create token ci-reader: content/read on vendor/**, metadata/read on vendor/** (expires 2031-01-01T00:00:00.000Z)',
      '~ anonymous pull: + public/**',
    ]);
  });

  it('plans nothing once the registry matches (apply twice is a no-op), whatever order grants come in', () => {
    const { changes, notes } = plan(
      parseDesiredState(example, 'berth.yaml', registryAudience),
      applied(example, [{ name: 'admin', kind: 'admin' }, { name: 'owner' }]),
      {
        actingAs: 'owner',
      },
    );
    assert.deepEqual(changes, []);
    assert.deepEqual(notes, [
      'kept the admin user admin: configuration (auth.adminUser) manages it',
      'kept user owner: it is the principal applying this file',
    ]);
  });

  it('updates grants, disabled, description and expiry in place', () => {
    const server = observed([
      {
        name: 'alice',
        description: 'old',
        grants: [
          { pattern: 'team-a/**', permission: 'pull' },
          { pattern: 'team-b/**', permission: 'pull' },
        ],
      },
      { name: 'bob' },
      { name: 'ci-pusher', kind: 'service', disabled: true, grants: [{ pattern: 'team-a/app', permission: 'push' }] },
      { name: 'ci-reader', kind: 'token', expiresAt: null, grants: [{ pattern: 'vendor/**', permission: 'content/read' }] },
    ]);
    const { changes } = plan(parseDesiredState(example.replace('prune: true', 'prune: false'), 'berth.yaml', registryAudience), server);
    assert.deepEqual(changes.map(formatChange), [
      '~ grants user alice: + push on team-a/**, + metadata/read on team-b/**, - pull on team-a/**',
      '~ description user alice: "old" -> "Alice"',
      '~ disable user bob',
      '~ enable service ci-pusher',
      '~ grants token ci-reader: + metadata/read on vendor/**',
      '~ expiry token ci-reader: never -> 2031-01-01T00:00:00.000Z',
      '~ anonymous pull: + public/**',
    ]);
    const grants = changes[0];
    assert.ok(grants?.op === 'grants');
    assert.equal(grants.grants.length, 3, 'carries the full new set for a PUT');
  });

  it('leaves description, expiry and anonymous pull alone when the file omits them; `null` expiry clears', () => {
    const desired = parseDesiredState('users:\n  - name: carol\n    expiresAt: null\n', 'berth.yaml', registryAudience);
    const server = observed([{ name: 'carol', description: 'set by hand', expiresAt: '2030-01-01T00:00:00.000Z' }], ['x/**']);
    assert.deepEqual(plan(desired, server).changes.map(formatChange), ['~ expiry user carol: 2030-01-01T00:00:00.000Z -> never']);
  });

  it('deletes unlisted principals only with prune: true, never the admin user or the principal applying it', () => {
    const server = observed([{ name: 'stray' }, { name: 'admin', kind: 'admin' }, { name: 'me', grants: [{ pattern: '**', permission: 'owner' }] }]);
    assert.deepEqual(plan(parseDesiredState('prune: false\n', 'berth.yaml', registryAudience), server, { actingAs: 'me' }).changes, []);
    const pruned = plan(parseDesiredState('prune: true\n', 'berth.yaml', registryAudience), server, { actingAs: 'me' });
    assert.deepEqual(pruned.changes.map(formatChange), ['- delete user stray']);
    assert.equal(pruned.notes.length, 2);
  });

  it('turns anonymous pull off with an empty list', () => {
    const { changes } = plan(parseDesiredState('settings:\n  anonymousPull: []\n', 'berth.yaml', registryAudience), observed([], ['a/**', 'b/*']));
    assert.deepEqual(changes.map(formatChange), ['~ anonymous pull: - a/**, - b/*']);
  });

  it('refuses a name that exists with another kind, and locking out the principal applying the file', () => {
    assert.throws(
      () => plan(parseDesiredState('tokens: [{name: alice}]\n', 'berth.yaml', registryAudience), observed([{ name: 'alice' }])),
      /alice exists as a user but the file declares a token/,
    );
    const me = observed([{ name: 'me', grants: [{ pattern: '**', permission: 'owner' }] }]);
    assert.throws(
      () => plan(parseDesiredState('users: [{name: me, grants: {"**": pull}}]\n', 'berth.yaml', registryAudience), me, { actingAs: 'me' }),
      /takes the owner grant away from me/,
    );
    assert.throws(
      () => plan(parseDesiredState('users: [{name: me, disabled: true, grants: {"**": owner}}]\n', 'berth.yaml', registryAudience), me, { actingAs: 'me' }),
      /disables me/,
    );
    assert.deepEqual(
      plan(parseDesiredState('users: [{name: me, grants: {"**": owner}}]\n', 'berth.yaml', registryAudience), me, { actingAs: 'me' }).changes,
      [],
    );
  });
});

describe('federatedCredentials', () => {
  const file = `
services:
  - name: deployer
    federatedCredentials:
      - { name: gh, preset: github, repository: acme/app, ref: main }
      - { name: k8s, preset: kubernetes, issuer: "https://oidc.example.com", namespace: prod }
      - name: custom
        issuer: https://issuer.example.com
        audiences: [b, a]
        subject: "w:*"
        conditions: [{ claim: ref, glob: "refs/*" }, { claim: actor, equals: alice }]
`;
  const expanded = [
    {
      name: 'gh',
      preset: 'github',
      issuer: 'https://token.actions.githubusercontent.com',
      audiences: [registryAudience],
      subject: 'repo:acme*/app*:ref:refs/heads/main',
      conditions: [{ claim: 'repository', equals: 'acme/app' }],
      defaultAudiences: true,
    },
    {
      name: 'k8s',
      preset: 'kubernetes',
      issuer: 'https://oidc.example.com',
      audiences: [registryAudience],
      subject: 'system:serviceaccount:prod:*',
      conditions: [],
      defaultAudiences: true,
    },
    {
      name: 'custom',
      preset: undefined,
      issuer: 'https://issuer.example.com',
      audiences: ['b', 'a'],
      subject: 'w:*',
      conditions: [
        { claim: 'ref', glob: 'refs/*' },
        { claim: 'actor', equals: 'alice' },
      ],
    },
  ];

  it('expands presets when the file is read; other principals have none', () => {
    const [deployer] = parseDesiredState(file, 'berth.yaml', registryAudience).principals;
    assert.deepEqual(deployer?.federatedCredentials, expanded);
    assert.deepEqual(parseDesiredState('users: [{name: a}]\n', 'berth.yaml', registryAudience).principals[0]?.federatedCredentials, []);
  });

  it('names the path of a bad declaration', () => {
    const cases: Array<[string, RegExp]> = [
      [
        'users:\n  - name: a\n    federatedCredentials: [{name: x, preset: github, repository: a/b}]\n',
        /^f\.yaml: users\.0\.federatedCredentials: only service principals/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials: [{name: x, preset: github}]\n',
        /services\.0\.federatedCredentials\.0\.repository: the github preset needs repository/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials: [{name: x, preset: github, repository: a/b, subject: s}]\n',
        /federatedCredentials\.0\.subject: the github preset builds the subject/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials: [{name: x, issuer: "https://i.example.com", subject: s}]\n',
        /federatedCredentials\.0\.audiences: required without a preset/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials: [{name: x, issuer: "http://i.example.com", audiences: [a], subject: s}]\n',
        /federatedCredentials\.0\.issuer: the issuer must be an https URL/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials: [{name: x, issuer: "https://i", audiences: [a], subject: s, conditions: [{claim: c}]}]\n',
        /conditions\.0: a condition has exactly one of/,
      ],
      [
        'services:\n  - name: s\n    federatedCredentials:\n      - {name: x, preset: github, repository: a/b}\n      - {name: x, preset: github, repository: a/c}\n',
        /federatedCredentials\.1\.name: x is declared twice/,
      ],
    ];
    for (const [text, message] of cases) {
      assert.throws(
        () => parseDesiredState(text, 'f.yaml', registryAudience),
        (err: unknown) => err instanceof DesiredStateError && message.test(err.message),
        text,
      );
    }
  });

  it('plans adds after creating the principal, then nothing once the server holds them (in any order)', () => {
    const desired = parseDesiredState(file, 'berth.yaml', registryAudience);
    assert.deepEqual(plan(desired, observed([])).changes.map(formatChange), [
      '+ create service deployer',
      '+ federated credential gh of service deployer: repo:acme*/app*:ref:refs/heads/main from https://token.actions.githubusercontent.com (audiences https://registry.example.com; if repository=acme/app)',
      '+ federated credential k8s of service deployer: system:serviceaccount:prod:* from https://oidc.example.com (audiences https://registry.example.com)',
      '+ federated credential custom of service deployer: w:* from https://issuer.example.com (audiences a, b; if actor=alice, ref~refs/*)',
    ]);
    const held = expanded.map(({ preset: _preset, ...c }) => ({ ...c, audiences: [...c.audiences].reverse(), conditions: [...c.conditions].reverse() }));
    assert.deepEqual(plan(desired, observed([{ name: 'deployer', kind: 'service', federatedCredentials: held }])).changes, []);
  });

  it('replaces a changed credential, showing what changed, and removes unlisted ones', () => {
    const desired = parseDesiredState(file, 'berth.yaml', registryAudience);
    const held = [
      { name: 'gh', issuer: 'https://token.actions.githubusercontent.com', audiences: ['berth'], subject: 'repo:acme/app:*', conditions: [] },
      {
        name: 'k8s',
        issuer: 'https://oidc.example.com',
        audiences: ['berth'],
        subject: 'system:serviceaccount:prod:*',
        conditions: [{ claim: 'x', oneOf: ['1', '2'] }],
      },
      { name: 'stale', issuer: 'https://old.example.com', audiences: ['berth'], subject: '*', conditions: [] },
    ];
    const { changes } = plan(desired, observed([{ name: 'deployer', kind: 'service', federatedCredentials: held }]));
    assert.deepEqual(changes.map(formatChange), [
      '~ federated credential gh of service deployer: subject repo:acme/app:* -> repo:acme*/app*:ref:refs/heads/main, conditions none -> repository=acme/app (revokes the refresh tokens it bought)',
      '~ federated credential k8s of service deployer: conditions x:1,2 -> none (revokes the refresh tokens it bought)',
      '+ federated credential custom of service deployer: w:* from https://issuer.example.com (audiences a, b; if actor=alice, ref~refs/*)',
      '- federated credential stale of service deployer',
    ]);
  });

  it('removes every federated credential of a listed service that declares none', () => {
    const held = [{ name: 'gh', issuer: 'https://i.example.com', audiences: ['berth'], subject: '*', conditions: [] }];
    const { changes } = plan(
      parseDesiredState('services: [{name: deployer}]\n', 'berth.yaml', registryAudience),
      observed([{ name: 'deployer', kind: 'service', federatedCredentials: held }]),
    );
    assert.deepEqual(changes.map(formatChange), ['- federated credential gh of service deployer']);
  });
});
