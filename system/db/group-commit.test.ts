import { describe, expect, it } from 'vitest';
import { createGroupCommit } from './group-commit.ts';

/** A commit whose transactions the test ends by hand, recording what each carried. */
function fakeDatabase(failWhen: (stmts: string[]) => boolean = () => false) {
  const commits: string[][] = [];
  const pending: Array<() => void> = [];
  const commit = (stmts: string[]) =>
    new Promise<string[]>((resolve, reject) => {
      commits.push(stmts);
      pending.push(() =>
        failWhen(stmts)
          ? reject(new Error(`rolled back: ${stmts.join(',')}`))
          : resolve(stmts.map((s) => `ok:${s}`)),
      );
    });
  const finishOne = async () => {
    await new Promise((r) => setTimeout(r, 0));
    pending.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { commits, commit, finishOne };
}

describe('group commit', () => {
  it('tells onCommit how many batches each commit carried, including a failed group retried alone', async () => {
    const db = fakeDatabase((stmts) => stmts.includes('bad'));
    const sizes: number[] = [];
    const write = createGroupCommit(db.commit, { onCommit: (n) => sizes.push(n) });
    const outcomes = Promise.allSettled([write(['a']), write(['b']), write(['bad']), write(['c'])]);
    for (let i = 0; i < 6; i++) await db.finishOne();
    const settled = await outcomes;
    expect(settled.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    // a alone; b, bad, c together (rolled back); then each of the three again, alone
    expect(sizes).toEqual([1, 3, 1, 1, 1]);
  });

  it('a batch alone commits at once; batches arriving during a commit share the next one', async () => {
    const db = fakeDatabase();
    const write = createGroupCommit(db.commit);
    const first = write(['a1', 'a2']);
    expect(db.commits).toEqual([['a1', 'a2']]); // no waiting when nothing is committing
    const second = write(['b1']);
    const third = write(['c1', 'c2']);
    await db.finishOne();
    expect(await first).toEqual(['ok:a1', 'ok:a2']);
    expect(db.commits[1]).toEqual(['b1', 'c1', 'c2']); // one transaction for both
    await db.finishOne();
    expect(await second).toEqual(['ok:b1']);
    expect(await third).toEqual(['ok:c1', 'ok:c2']);
  });

  it('answers a batch only after the commit that carries it', async () => {
    const db = fakeDatabase();
    const write = createGroupCommit(db.commit);
    void write(['a']);
    let answered = false;
    const queued = write(['b']).then(() => {
      answered = true;
    });
    await db.finishOne(); // commits a; b's group has started, not finished
    expect(answered).toBe(false);
    await db.finishOne();
    await queued;
    expect(answered).toBe(true);
  });

  it('a failing batch fails alone: the group is retried batch by batch', async () => {
    const db = fakeDatabase((stmts) => stmts.includes('bad'));
    const write = createGroupCommit(db.commit);
    const lead = write(['lead']);
    const good = write(['g1']);
    // handled now: it rejects while the other batches are still committing
    const bad = write(['bad']).catch((error: unknown) => error);
    const alsoGood = write(['g2']);
    for (let i = 0; i < 5; i++) await db.finishOne();
    await expect(lead).resolves.toEqual(['ok:lead']);
    await expect(good).resolves.toEqual(['ok:g1']);
    expect(await bad).toEqual(new Error('rolled back: bad'));
    await expect(alsoGood).resolves.toEqual(['ok:g2']);
    // the group, then each of its batches alone, in arrival order
    expect(db.commits.slice(1)).toEqual([['g1', 'bad', 'g2'], ['g1'], ['bad'], ['g2']]);
  });

  it('caps a group by statements', async () => {
    const db = fakeDatabase();
    const write = createGroupCommit(db.commit, { maxStatements: 3 });
    void write(['x']);
    const waiting = [write(['a', 'b']), write(['c']), write(['d', 'e'])];
    for (let i = 0; i < 4; i++) await db.finishOne();
    await Promise.all(waiting);
    expect(db.commits.slice(1)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
  });
});
