/**
 * The workload-identity conventions a client and the registry must agree on without configuration.
 */

/**
 * The audience Berth's federated credentials accept unless told otherwise, and so the audience
 * `berth login --oidc github` and the Kubernetes controller ask for by default.
 */
export const defaultAudience = 'berth';
