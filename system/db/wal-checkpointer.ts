import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the event loop, for the embedded database.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that crosses 1,000 WAL pages, on
 * the committing connection, and copies the WAL into the database file with an fsync.
 * The embedded engine is synchronous, so that COMMIT blocks the whole process: measured
 * here, one commit in about a hundred took 6-8 ms instead of 0.1 ms during a webhook
 * storm, and every WebSocket frame, webhook answer and read waited for it (the push
 * tail). So the app's connections turn the automatic checkpoint off, and a worker
 * thread with a connection of its own runs `PRAGMA wal_checkpoint(PASSIVE)` every
 * `intervalMs`: PASSIVE never waits for or blocks writers and readers, and the fsync
 * blocks only the worker. The WAL stays bounded as long as the worker runs; if it stops
 * (an error, an exit), `onFailure` turns the automatic checkpoint back on.
 */
export interface WalCheckpointerOptions {
  /** The database file. */
  path: string;
  /** @default 250 */
  intervalMs?: number;
  /** The `libsql` module the worker loads. @default this package's */
  libsqlModule?: string;
  /** Called once if the worker fails or exits before `stop()`. */
  onFailure(error: Error): void;
}

export interface CheckpointStats {
  /** Checkpoints run. */
  runs: number;
  /** WAL frames copied into the database file, in total. */
  framesCheckpointed: number;
}

export interface WalCheckpointer {
  /** Runs one checkpoint now and resolves with the totals after it (tests). */
  checkpoint(): Promise<CheckpointStats>;
  /**
   * Stops the worker and resolves once its thread has ended. (SQLite removes the WAL when
   * the last connection closes; a `libsql` connection closes once its statements are
   * garbage-collected, so that may be later.)
   */
  stop(): Promise<void>;
}

// CommonJS, evaluated by the worker: the bundle has no file of its own for it, and the
// libsql addon is loaded by its resolved path (an external of the bundle either way)
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Libsql = require(workerData.libsql);
const db = new Libsql(workerData.path, { timeout: 0 });
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
// after each checkpoint: the WAL frames it copied into the database file
const run = () => parentPort.postMessage(checkpoint.get().checkpointed);
const timer = setInterval(run, workerData.intervalMs);
parentPort.on('message', (message) => {
  if (message === 'now') return run();
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

const libsqlPath = createRequire(import.meta.url).resolve('libsql');

export function startWalCheckpointer(options: WalCheckpointerOptions): WalCheckpointer {
  const stats: CheckpointStats = { runs: 0, framesCheckpointed: 0 };
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      libsql: options.libsqlModule ?? libsqlPath,
      path: options.path,
      intervalMs: options.intervalMs ?? 250,
    },
  });
  // a background duty: it never keeps the process alive
  worker.unref();
  const waiting: Array<(stats: CheckpointStats) => void> = [];
  worker.on('message', (frames: number) => {
    stats.runs += 1;
    stats.framesCheckpointed += Math.max(0, frames);
    for (const resolve of waiting.splice(0)) resolve({ ...stats });
  });
  let stopping = false;
  let failed = false;
  const fail = (error: Error) => {
    if (stopping || failed) return;
    failed = true;
    options.onFailure(error);
  };
  worker.on('error', fail);
  const exited = new Promise<void>((resolve) => {
    worker.once('exit', (code) => {
      fail(new Error(`the WAL checkpoint worker exited (code ${code})`));
      resolve();
    });
  });
  return {
    checkpoint() {
      if (stopping || failed) return Promise.resolve({ ...stats });
      return new Promise((resolve) => {
        waiting.push(resolve);
        worker.postMessage('now');
      });
    },
    async stop() {
      if (stopping) return exited;
      stopping = true;
      // an unref'd worker would let the process exit before its last checkpoint ends
      worker.ref();
      if (!failed) worker.postMessage('stop');
      await exited;
    },
  };
}
