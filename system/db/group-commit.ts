/**
 * Group commit: write batches that arrive while one is committing wait for it, then
 * commit together, in one transaction and one round trip. A batch that arrives when
 * nothing is committing goes at once (no timer, so no latency is added); under
 * concurrency the queue fills during each commit and the next commit takes it all.
 *
 * Each caller still gets exactly its own results, and only after the transaction that
 * holds its statements has committed. Batches never see each other's failures: when a
 * group fails, its batches are committed again one by one, in arrival order, so only
 * the failing batch fails (with its own error) and nothing is half-applied. Every
 * statement must therefore be safe to run after the group's rollback, as any statement
 * of a write batch is.
 */
export interface GroupCommitOptions {
  /** Statements per group; a batch larger than this still commits (alone). @default 1000 */
  maxStatements?: number;
  /** One call per commit: how many batches it carried (telemetry, tests). */
  onCommit?: (batches: number) => void;
  /**
   * When an idle committer starts. @default at once. Node passes `setImmediate`, which
   * lets every request whose data arrived in the same event-loop turn join the first
   * commit, for the price of one turn: an embedded database commits synchronously, so
   * nothing else could queue while it does, and a round trip to sqld costs more than a turn.
   */
  schedule?: (start: () => void) => void;
}

/**
 * `context` rides along with a batch to `commit` (the DB layer's parent span): a group
 * commits with its first batch's.
 */
export function createGroupCommit<S, R, C = undefined>(
  commit: (statements: S[], context: C | undefined) => Promise<R[]>,
  options: GroupCommitOptions = {},
): (statements: S[], context?: C) => Promise<R[]> {
  const maxStatements = options.maxStatements ?? 1000;
  const queue: Array<{
    statements: S[];
    context: C | undefined;
    resolve(r: R[]): void;
    reject(e: unknown): void;
  }> = [];
  let committing = false;

  async function drain(): Promise<void> {
    committing = true;
    try {
      while (queue.length > 0) {
        let size = 0;
        let count = 0;
        while (
          count < queue.length &&
          (count === 0 || size + queue[count]!.statements.length <= maxStatements)
        ) {
          size += queue[count]!.statements.length;
          count += 1;
        }
        const group = queue.splice(0, count);
        options.onCommit?.(group.length);
        if (group.length === 1) {
          const only = group[0]!;
          await commit(only.statements, only.context).then(only.resolve, only.reject);
          continue;
        }
        try {
          const results = await commit(
            group.flatMap((g) => g.statements),
            group[0]!.context,
          );
          let at = 0;
          for (const g of group) {
            g.resolve(results.slice(at, at + g.statements.length));
            at += g.statements.length;
          }
        } catch {
          // isolate the failure: the group rolled back whole, so each batch runs again alone
          for (const g of group) {
            options.onCommit?.(1);
            await commit(g.statements, g.context).then(g.resolve, g.reject);
          }
        }
      }
    } finally {
      committing = false;
    }
  }

  const schedule = options.schedule ?? ((start) => start());
  return (statements, context) =>
    new Promise<R[]>((resolve, reject) => {
      queue.push({ statements, context, resolve, reject });
      if (!committing) {
        committing = true; // claimed now: later arrivals queue for this start
        schedule(() => void drain());
      }
    });
}
