/**
 * Saves the latest of a stream of values (a running job's progress) at most once per `everyMs`, one
 * save at a time, without losing the last value: a value offered during the pause is saved when the
 * pause ends, and `flush()` saves what is pending at once. Values offered while a save runs replace
 * each other; only the newest is saved next. A failed save is reported to `onError` and not retried
 * (the next value replaces it).
 */
export class ThrottledSave<T> {
  private pending: { value: T } | undefined;
  private saving: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastSaveAt = -Infinity;
  private closed = false;

  constructor(
    private readonly save: (value: T) => Promise<unknown>,
    private readonly everyMs: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  offer(value: T): void {
    if (this.closed) return;
    this.pending = { value };
    this.schedule();
  }

  /** Saves the pending value now and waits until no save runs. */
  async flush(): Promise<void> {
    for (;;) {
      this.cancelTimer();
      if (this.saving) await this.saving;
      else if (this.pending) this.write(this.pending.value);
      else return;
    }
  }

  /** Drops what is pending and saves nothing more (the work's lease was lost); waits for a save that runs. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    this.cancelTimer();
    await this.saving;
  }

  private schedule(): void {
    if (this.saving || this.timer || !this.pending) return;
    const wait = this.lastSaveAt + this.everyMs - Date.now();
    if (wait <= 0) {
      this.write(this.pending.value);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, wait);
    this.timer.unref();
  }

  private write(value: T): void {
    this.pending = undefined;
    this.lastSaveAt = Date.now();
    this.saving = this.save(value).then(
      () => undefined,
      (err: unknown) => this.onError(err),
    );
    void this.saving.finally(() => {
      this.saving = undefined;
      if (!this.closed) this.schedule();
    });
  }

  private cancelTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
