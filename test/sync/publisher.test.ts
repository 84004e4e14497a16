import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { changeLog } from '../../system/db/schema.ts';
import { type ChangePublisher, createChangePublisher } from '../../system/sync/publisher.ts';
import { type OpenedBackend, openBackend } from '../support/harness.ts';

/**
 * The publisher on a real embedded database: every committed change is handed on once,
 * in commit order; `drain()` resolves only after the changes committed before it; and
 * callers that arrive while a drain is reading share one more read of the log.
 */
describe('change publisher', () => {
  let backend: OpenedBackend;
  let reads: number;
  let delivered: number[];
  let publisher: ChangePublisher | undefined;
  /** What the cache invalidation step does (a slow sink, or one the test releases). */
  let invalidate: () => Promise<void>;

  beforeEach(async () => {
    backend = await openBackend('memory');
    reads = 0;
    delivered = [];
    invalidate = async () => {};
    backend.database.onQuery((event) => {
      if (event.summary === 'SELECT change_log') reads += 1;
    });
  });
  afterEach(async () => {
    publisher?.stop();
    await backend.close();
  });

  /** Appends `count` change-log rows and returns them, as a writer's `RETURNING` does. */
  const commit = async (count: number) => {
    const rows = Array.from({ length: count }, (_, i) => ({
      orgId: 'org_1',
      entity: 'project' as const,
      entityId: `p${i}`,
      op: 'upsert' as const,
      version: 1,
      createdAt: Date.now(),
    }));
    return backend.database.db.insert(changeLog).values(rows).returning();
  };

  const start = async () => {
    publisher = createChangePublisher({
      database: backend.database,
      pollIntervalMs: 60_000,
      invalidate: () => invalidate(),
      deliver: (rows) => {
        delivered.push(...rows.map((r) => r.id));
      },
    });
    await publisher.start();
    reads = 0; // start() reads where the log ends
    return publisher;
  };

  /** A slow sink: a second pass running beside the first would show in `mostActive`. */
  const slowSink = () => {
    const seen = { active: 0, mostActive: 0 };
    invalidate = async () => {
      seen.active += 1;
      seen.mostActive = Math.max(seen.mostActive, seen.active);
      await new Promise((resolve) => setImmediate(resolve));
      seen.active -= 1;
    };
    return seen;
  };

  it('callers arriving during a drain share one more read, and see their changes', async () => {
    const p = await start();
    await commit(1);
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    invalidate = () => released;
    const first = p.drain(); // reads row 1, then waits in invalidate
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(reads).toBe(1);
    // thirty deliveries of one group commit, answered at once
    await commit(30);
    const later = Array.from({ length: 30 }, () => p.drain());
    release();
    await Promise.all([first, ...later]);
    expect(delivered).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    // the first read, one shared read for the thirty callers: nothing per caller
    expect(reads).toBe(2);
  });

  it('hands every change on once and in order, whatever the interleaving', async () => {
    const p = await start();
    const sink = slowSink();
    const waits: Promise<void>[] = [];
    let total = 0;
    for (let round = 0; round < 40; round += 1) {
      const count = 1 + (round % 3);
      await commit(count);
      total += count;
      waits.push(p.drain());
      if (round % 2 === 0) p.poke();
      if (round % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(waits);
    expect(sink.mostActive).toBe(1);
    expect(delivered).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });

  it('a drain resolves only after the changes committed before it were handed on', async () => {
    const p = await start();
    for (let round = 0; round < 20; round += 1) {
      await commit(2);
      const before = round * 2 + 2;
      void p.drain(); // someone else's drain, possibly mid-read
      await p.drain();
      expect(delivered.length).toBeGreaterThanOrEqual(before);
    }
    expect(delivered).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
  });

  it('a writer handing over the rows it appended costs no read of the log', async () => {
    const p = await start();
    for (let round = 0; round < 10; round += 1) await p.handOn(await commit(2));
    expect(delivered).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(reads).toBe(0);
    // a group commit answers its writers at once; they may hand over out of order
    const first = await commit(3);
    const second = await commit(2);
    await Promise.all([p.handOn(second), p.handOn(first)]);
    expect(delivered.slice(20)).toEqual([21, 22, 23, 24, 25]);
    expect(reads).toBeLessThanOrEqual(1);
  });

  it("handed rows behind another writer's commit wait for one read, then go in order", async () => {
    const p = await start();
    await commit(2); // another process: no hand-over, no poke
    const mine = await commit(3);
    await p.handOn(mine);
    expect(delivered).toEqual([1, 2, 3, 4, 5]);
    expect(reads).toBe(1);
    // the next writer continues the log again: no read
    await p.handOn(await commit(1));
    expect(delivered).toEqual([1, 2, 3, 4, 5, 6]);
    expect(reads).toBe(1);
  });

  it('rows the log does not show yet (a replica behind) end the wait instead of spinning', async () => {
    const p = await start();
    const [row] = await commit(1);
    const ahead = { ...row!, id: row!.id + 5 };
    await p.handOn([ahead]);
    expect(delivered).toEqual([1]); // read from the log; the row it never showed is not invented
    expect(reads).toBe(1);
    await commit(1);
    await p.drain();
    expect(delivered).toEqual([1, 2]);
  });

  it('hand-overs, drains and pokes interleaved: every change once, in order', async () => {
    const p = await start();
    const sink = slowSink();
    const waits: Promise<void>[] = [];
    let total = 0;
    for (let round = 0; round < 60; round += 1) {
      const count = 1 + (round % 4);
      const rows = await commit(count);
      total += count;
      // a third of the writers do not hand their rows over (another process's commit)
      if (round % 3 !== 2) waits.push(p.handOn(rows));
      if (round % 5 === 0) waits.push(p.drain());
      if (round % 7 === 0) p.poke();
      if (round % 4 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(waits);
    await p.drain();
    expect(sink.mostActive).toBe(1);
    expect(delivered).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});
