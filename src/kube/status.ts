/**
 * Status conditions, following Kubernetes' conventions (metav1.Condition): one entry per type,
 * `lastTransitionTime` moves only when `status` changes, every entry carries the generation it was
 * computed from. A binding's status is rewritten only when something in it changed, so a status
 * write (which the binding watch reports) does not start another write.
 */
import type { Condition, ConditionStatus, ConditionType, PullBindingStatus } from './types.js';

export interface ConditionInput {
  type: ConditionType;
  status: ConditionStatus;
  reason: string;
  message: string;
}

const order: ConditionType[] = ['Ready', 'TokenRefreshFailed', 'ExpiringSoon'];

/** The new set of conditions: `updates` replace their types, keeping transition times where status stands. */
export function mergeConditions(
  previous: readonly Condition[] | undefined,
  updates: readonly ConditionInput[],
  generation: number | undefined,
  now: number,
): Condition[] {
  const byType = new Map<ConditionType, Condition>();
  for (const condition of previous ?? []) byType.set(condition.type, condition);
  for (const update of updates) {
    const old = byType.get(update.type);
    byType.set(update.type, {
      type: update.type,
      status: update.status,
      reason: update.reason,
      message: update.message,
      lastTransitionTime: old && old.status === update.status ? old.lastTransitionTime : rfc3339(now),
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
    });
  }
  return order.flatMap((type) => byType.get(type) ?? []);
}

export function findCondition(status: PullBindingStatus | undefined, type: ConditionType): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

/** Kubernetes timestamps: RFC 3339 with second precision (metav1.Time). */
export function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Deep equality over JSON values with object keys in any order. */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([x], [y]) => (x < y ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
