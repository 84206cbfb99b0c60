/** The management API (/api/v1, owner only): one module per resource. See docs/management.md. */
export * as principals from './principals.js';
export * as secrets from './secrets.js';
export * as policy from './policy.js';
export * as federated from './federated.js';
export * as history from './history.js';
export * as imports from './imports.js';
export * as sync from './sync.js';
export * as webhooks from './webhooks.js';
export * as cache from './cache.js';
