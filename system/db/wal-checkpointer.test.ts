import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from './client.ts';
import { createEmbeddedClient } from './embedded-client.ts';
import { startWalCheckpointer } from './wal-checkpointer.ts';

const dir = mkdtempSync(join(tmpdir(), 'wal-checkpointer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PAGE = 4096;
/** 1,500 commits of a ~4 KB row: well past the 1,000 WAL pages of SQLite's automatic checkpoint. */
async function writeMany(client: ReturnType<typeof createEmbeddedClient>) {
  await client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
  for (let i = 0; i < 1500; i++) {
    await client.batch(
      [{ sql: 'INSERT INTO t (body) VALUES (?)', args: ['x'.repeat(4000)] }],
      'write',
    );
  }
}
const walBytes = (path: string) => statSync(`${path}-wal`).size;
const autocheckpoint = async (client: ReturnType<typeof createEmbeddedClient>) =>
  (await client.execute('PRAGMA wal_autocheckpoint')).rows[0]![0];

describe('WAL checkpoints', () => {
  it('inline: SQLite checkpoints inside commits, so the WAL stays near 1,000 pages', async () => {
    const path = join(dir, 'inline.db');
    const client = createEmbeddedClient({ path, busyTimeoutMs: 1000, walCheckpoint: 'inline' });
    try {
      expect(await autocheckpoint(client)).toBe(1000);
      expect(client.checkpointer).toBeUndefined();
      await writeMany(client);
      expect(walBytes(path)).toBeLessThan(1100 * PAGE);
    } finally {
      client.close();
    }
  });

  it('background: no commit checkpoints (the WAL grows past 1,000 pages) until the worker does, and nothing is lost', async () => {
    const path = join(dir, 'background.db');
    const client = createEmbeddedClient({
      path,
      busyTimeoutMs: 1000,
      walCheckpoint: 'background',
      // the worker waits for the test to ask
      walCheckpointIntervalMs: 3_600_000,
    });
    try {
      expect(await autocheckpoint(client)).toBe(0);
      // an interactive transaction's own connection follows the same rule
      const tx = await client.transaction('write');
      expect((await tx.execute('PRAGMA wal_autocheckpoint')).rows[0]![0]).toBe(0);
      tx.close();
      await writeMany(client);
      expect(walBytes(path)).toBeGreaterThan(1400 * PAGE);
      const stats = await client.checkpointer!.checkpoint();
      expect(stats.runs).toBe(1);
      expect(stats.framesCheckpointed).toBeGreaterThan(1400);
      // the next writer starts the WAL over
      await client.execute({ sql: 'INSERT INTO t (body) VALUES (?)', args: ['after'] });
      expect((await client.execute('SELECT count(*) FROM t')).rows[0]![0]).toBe(1501);
    } finally {
      client.close();
      await client.checkpointer!.stop();
    }
    const reopened = createEmbeddedClient({ path, busyTimeoutMs: 1000, walCheckpoint: 'inline' });
    try {
      expect((await reopened.execute('SELECT count(*) FROM t')).rows[0]![0]).toBe(1501);
    } finally {
      reopened.close();
    }
  });

  it('reports a worker that cannot run, once', async () => {
    const failures: Error[] = [];
    const checkpointer = startWalCheckpointer({
      path: join(dir, 'unused.db'),
      libsqlModule: join(dir, 'no-such-module.js'),
      onFailure: (error) => failures.push(error),
    });
    await expect.poll(() => failures.length, { timeout: 5000 }).toBe(1);
    expect(String(failures[0])).toMatch(/no-such-module/);
    await checkpointer.stop();
    expect(failures).toHaveLength(1);
  });

  it("a database's close resolves once the checkpoint worker has ended", async () => {
    // a process may exit right after the close: a worker still inside the libsql addon
    // then aborts the process (a neon panic, SIGABRT) instead of letting it exit 0
    let worker: Worker | undefined;
    const created = (w: Worker) => {
      worker = w;
    };
    process.on('worker', created);
    try {
      const database = await openDatabase({ url: `file:${join(dir, 'close.db')}` });
      await database.client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      await expect.poll(() => worker?.threadId, { timeout: 5000 }).toBeGreaterThan(0);
      await database.close();
      // -1 once the thread no longer runs
      expect(worker!.threadId).toBe(-1);
    } finally {
      process.off('worker', created);
    }
  });
});
