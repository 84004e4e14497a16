import type { Database } from '../db/database.ts';
import { changeLogBounds, changesAfter } from '../db/queries/changes.ts';
import type { ChangeRow } from '../db/schema.ts';

/**
 * After commit, hands new change-log rows to (a) cache invalidation and then (b) the
 * realtime hub, in that order, so a client that refetches after a push never reads a
 * stale cache. Rows are read from the log itself (`id > last`), so every process that
 * shares the database sees every change, in commit order, whoever wrote it; a poke
 * (local, or through Redis) only says "look now", and a slow poll covers lost pokes.
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
  /** Id of the last row handed on. */
  position(): number;
  stop(): void;
}

export function createChangePublisher(options: ChangePublisherOptions): ChangePublisher {
  const batchSize = options.batchSize ?? 500;
  const db = options.database.db;
  let last = 0;
  let reading = false;
  /** The one drain queued behind the running one, shared by everyone who asked meanwhile. */
  let queued: { promise: Promise<void>; resolve: () => void } | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;

  async function drainOnce(): Promise<void> {
    for (;;) {
      const rows = await changesAfter(db, last, batchSize);
      if (rows.length === 0) return;
      await options.invalidate(rows);
      await options.deliver(rows);
      last = rows[rows.length - 1]!.id;
      if (rows.length < batchSize) return;
    }
  }

  function run(): Promise<void> {
    reading = true;
    return drainOnce()
      .catch((error: unknown) => options.onError?.(error))
      .then(() => {
        reading = false;
        const waiting = queued;
        if (waiting) {
          queued = null;
          void run().then(waiting.resolve); // starts now: no gap for a third drain to slip in
        }
      });
  }

  /**
   * Resolves after a drain that began after this call. A drain already reading may have
   * read before the caller's commit, so callers that arrive during it share ONE drain
   * queued behind it: a group commit that answers 30 deliveries at once costs two reads
   * of the log (a round trip each on sqld), and no two drains ever read at once.
   */
  function drain(): Promise<void> {
    if (!reading) return run();
    if (!queued) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      queued = { promise, resolve };
    }
    return queued.promise;
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
    position: () => last,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
