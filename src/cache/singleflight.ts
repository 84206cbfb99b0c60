/**
 * One call in flight per key: a second caller with the same key while the first runs gets the same
 * promise (so concurrent cold pulls of one tag ask the upstream once). The key is forgotten when
 * the call settles, so a failure is not remembered.
 */
export class Singleflight<T> {
  private readonly flights = new Map<string, Promise<T>>();

  /** `work()`'s result, shared with every caller of the same key while it runs; `joined` says whether this caller shared. */
  run(key: string, work: () => Promise<T>): { result: Promise<T>; joined: boolean } {
    const existing = this.flights.get(key);
    if (existing) return { result: existing, joined: true };
    const result = work().finally(() => {
      if (this.flights.get(key) === result) this.flights.delete(key);
    });
    this.flights.set(key, result);
    return { result, joined: false };
  }

  get size(): number {
    return this.flights.size;
  }
}
