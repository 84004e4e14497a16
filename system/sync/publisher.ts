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
  let running: Promise<void> | null = null;
  let again = false;
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

  function drain(): Promise<void> {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await drainOnce();
        } while (again);
      } catch (error) {
        options.onError?.(error);
      } finally {
        running = null;
      }
    })();
    return running;
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
    async drain() {
      // a drain already running may have read before our commit: run one more after it
      if (running) {
        again = true;
        await running;
      }
      await drain();
    },
    position: () => last,
    stop() {
      if (timer) clearInterval(timer);
    },
  };
}
