/**
 * The workload-identity conventions a client and the registry must agree on without configuration.
 *
 * Audiences: every Berth has its own (`federation.audience`, else `auth.publicUrl`, else a
 * generated `urn:berth:<uuid>`), so a token a workload got for one registry is refused by any
 * other. A registry advertises it in every Bearer challenge as the auth-param
 * `audience="…"` (RFC 7235 lets a challenge carry parameters a client does not know; Docker's and
 * containers/image's parsers ignore it), and Berth's clients (`berth login --oidc github`, the
 * GitHub Action, the Kubernetes controller, docker-credential-berth) ask their issuer for that
 * audience unless told otherwise.
 */

/** The challenge auth-param that names the audience OIDC tokens for this registry must carry. */
export const audienceChallengeParam = 'audience';

/**
 * The audience every Berth used before instance audiences. Credentials created with it keep it
 * (`federation.acceptLegacyAudience`); clients fall back to it only for a registry that advertises
 * no audience (a Berth older than instance audiences).
 */
export const legacyAudience = 'berth';
