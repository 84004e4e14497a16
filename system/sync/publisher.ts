import type { Database } from '../db/database.ts';
import { changeLogBounds, changesAfter } from '../db/queries/changes.ts';
import type { ChangeRow } from '../db/schema.ts';

/**
 * After commit, hands new change-log rows to (a) cache invalidation and then (b) the
 * realtime hub, in that order, so a client that refetches after a push never reads a
 * stale cache. Rows are read from the log itself (`id > last`), so every process that
 * shares the database sees every change, in commit order, whoever wrote it; a poke
 * (local, or through Redis) only says "look now", and a slow poll covers lost pokes.
 * A writer of this process may hand over the rows its own commit appended (`handOn`):
 * when they continue the log right after the last row handed on, no other commit can
 * sit between, so they go on without reading the log (a round trip on sqld).
 */
export type ChangeSink = (rows: readonly ChangeRow[]) => void | Promise<void>;

export interface ChangePublisherOptions {
  database: Database;
  invalidate: ChangeSink;
  deliver: ChangeSink;
  /** @default 500 */
  batchSize?: number;
  /** Safety-net poll when no poke arrives. @default 1000 */
  pollIntervalMs?: number;
  onError?: (error: unknown) => void;
}

export interface ChangePublisher {
  /** Starts from the current end of the log (history is for resumes, not broadcast). */
  start(): Promise<void>;
  /** Something committed: drain soon. Pokes during a drain coalesce into one more drain. */
  poke(): void;
  /** Resolves when everything committed before the call has been handed on. */
  drain(): Promise<void>;
  /**
   * A commit of this process appended `rows` (its batch's `RETURNING`, ids ascending):
   * resolves when they, and every row before them, have been handed on.
   */
  handOn(rows: readonly ChangeRow[]): Promise<void>;
  /** Id of the last row handed on. */
  position(): number;
  stop(): void;
}

export function createChangePublisher(options: ChangePublisherOptions): ChangePublisher {
  const batchSize = options.batchSize ?? 500;
  const db = options.database.db;
  let last = 0;
  let pumping = false;
  /** Rows writers handed over and not yet passed on, ids ascending. */
  let handed: ChangeRow[] = [];
  /** `handOn` callers, resolved once `last` reaches their last row. */
  let waiting: Array<{ upTo: number; resolve: () => void }> = [];
  /** `drain()` callers, resolved after a read of the log that began after their call. */
  let readers: Array<() => void> = [];
  let timer: ReturnType<typeof setInterval> | undefined;

  async function pass(rows: readonly ChangeRow[]): Promise<void> {
    await options.invalidate(rows);
    await options.deliver(rows);
    last = rows[rows.length - 1]!.id;
  }

  /** The handed rows that continue the log right after `last`. */
  function takeContiguous(): ChangeRow[] {
    handed = handed.filter((row) => row.id > last);
    let count = 0;
    while (count < handed.length && count < batchSize && handed[count]!.id === last + 1 + count) {
      count += 1;
    }
    return handed.splice(0, count);
  }

  /** Reads the log to its end. */
  async function readLog(): Promise<void> {
    for (;;) {
      const rows = await changesAfter(db, last, batchSize);
      if (rows.length > 0) await pass(rows);
      if (rows.length < batchSize) return;
    }
  }

  function settle(upTo: number): void {
    waiting = waiting.filter((waiter) => {
      if (waiter.upTo > upTo) return true;
      waiter.resolve();
      return false;
    });
  }

  /** The one loop that hands rows on: never two at once, so never out of order. */
  async function pump(): Promise<void> {
    for (;;) {
      const rows = takeContiguous();
      if (rows.length > 0) {
        await pass(rows);
        settle(last);
        continue;
      }
      if (readers.length === 0 && handed.length === 0) {
        pumping = false; // decided in the same turn as the check: a later call starts a pump
        return;
      }
      // someone asked for a drain, or handed rows wait behind another writer's commit
      const served = readers;
      readers = [];
      const committedBefore = handed.length > 0 ? handed[handed.length - 1]!.id : 0;
      await readLog();
      for (const resolve of served) resolve();
      if (last < committedBefore) {
        // committed, yet not in the log this process reads (a replica behind its
        // primary): stop waiting; the poll hands them on once they show
        handed = handed.filter((row) => row.id > committedBefore);
        settle(committedBefore);
      } else settle(last);
    }
  }

  function kick(): void {
    if (pumping) return;
    pumping = true;
    pump().catch((error: unknown) => {
      // everyone waiting is answered, as a failed read always was; `last` did not move,
      // so the next poke or poll reads the rows again
      options.onError?.(error);
      pumping = false;
      handed = [];
      settle(Number.POSITIVE_INFINITY);
      for (const resolve of readers.splice(0)) resolve();
    });
  }

  /**
   * Resolves after a read that began after this call. A read already running may have
   * begun before the caller's commit, so callers that arrive during it share ONE read
   * after it: a group commit that answers 30 deliveries at once costs two reads of the
   * log (a round trip each on sqld), and no two reads ever run at once.
   */
  function drain(): Promise<void> {
    return new Promise((resolve) => {
      readers.push(resolve);
      kick();
    });
  }

  function handOn(rows: readonly ChangeRow[]): Promise<void> {
    const upTo = rows.length > 0 ? rows[rows.length - 1]!.id : 0;
    if (upTo <= last) return Promise.resolve();
    handed.push(...rows);
    // two writers may hand over out of commit order
    if (handed.length > rows.length && handed[handed.length - rows.length - 1]!.id > rows[0]!.id) {
      handed.sort((a, b) => a.id - b.id);
    }
    return new Promise((resolve) => {
      waiting.push({ upTo, resolve });
      kick();
    });
  }

  return {
    async start() {
      last = (await changeLogBounds(db)).newest;
      timer = setInterval(() => void drain(), options.pollIntervalMs ?? 1000);
      (timer as { unref?: () => void }).unref?.();
    },
    poke() {
      void drain();
    },
    drain,
    handOn,
    position: () => last,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
