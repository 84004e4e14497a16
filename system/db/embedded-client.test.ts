import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LibsqlError } from '@libsql/client';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedClient } from './embedded-client.ts';

const dir = mkdtempSync(join(tmpdir(), 'embedded-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('embedded client (libsql with reused prepared statements)', () => {
  let n = 0;
  const fresh = async (path = join(dir, `db-${++n}.db`)) => {
    const client = createEmbeddedClient({ path, busyTimeoutMs: 1000, statementCacheSize: 2 });
    await client.executeMultiple(
      'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE, score REAL, data BLOB);',
    );
    return client;
  };
  let client: Awaited<ReturnType<typeof fresh>>;
  beforeEach(async () => {
    client = await fresh();
  });

  it('answers rows by index and by column name, writes with rowsAffected and lastInsertRowid', async () => {
    const insert = await client.execute({
      sql: 'INSERT INTO t (name, score, data) VALUES (?, ?, ?)',
      args: ['a', 1.5, new Uint8Array([1, 2, 3]).buffer],
    });
    expect(insert.rowsAffected).toBe(1);
    expect(insert.lastInsertRowid).toBe(1n);
    const { rows, columns } = await client.execute('SELECT id, name, score, data FROM t');
    expect(columns).toEqual(['id', 'name', 'score', 'data']);
    expect([rows[0]![0], rows[0]![1], rows[0]!.name, rows[0]!.score]).toEqual([1, 'a', 'a', 1.5]);
    expect([...new Uint8Array(rows[0]!.data as ArrayBuffer)]).toEqual([1, 2, 3]);
    expect(Array.prototype.slice.call(rows[0])).toHaveLength(4);
  });

  it('a write with RETURNING answers its rows and counts them as affected, as sqld does', async () => {
    await client.batch(["INSERT INTO t (name) VALUES ('a')", "INSERT INTO t (name) VALUES ('b')"]);
    const updated = await client.execute(
      "UPDATE t SET score = 2 WHERE name != 'zz' RETURNING name",
    );
    expect(updated.rows.map((r) => r.name).sort()).toEqual(['a', 'b']);
    expect(updated.rowsAffected).toBe(2);
    const none = await client.execute("DELETE FROM t WHERE name = 'zz' RETURNING id");
    expect([none.rows.length, none.rowsAffected]).toEqual([0, 0]);
    expect((await client.execute('SELECT name FROM t')).rowsAffected).toBe(0);
  });

  it('a LIMIT 1 read (literal or bound) answers like the full read would', async () => {
    await client.batch(["INSERT INTO t (name) VALUES ('a')", "INSERT INTO t (name) VALUES ('b')"]);
    const one = await client.execute({ sql: 'SELECT name FROM t ORDER BY id LIMIT ?', args: [1] });
    expect(one.rows.map((r) => r.name)).toEqual(['a']);
    const two = await client.execute({ sql: 'SELECT name FROM t ORDER BY id LIMIT ?', args: [2] });
    expect(two.rows.map((r) => r.name)).toEqual(['a', 'b']);
    const none = await client.execute("SELECT name FROM t WHERE name = 'zz' LIMIT 1");
    expect(none.rows).toEqual([]);
  });

  it('named arguments, booleans and dates are bound as libSQL does', async () => {
    await client.execute({
      sql: 'INSERT INTO t (name, score) VALUES (:name, $score)',
      args: { name: 'n', score: true },
    });
    const when = new Date(1_700_000_000_000);
    await client.execute({ sql: 'UPDATE t SET score = ? WHERE name = ?', args: [when, 'n'] });
    expect((await client.execute("SELECT score FROM t WHERE name = 'n'")).rows[0]!.score).toBe(
      1_700_000_000_000,
    );
    await expect(client.execute({ sql: 'SELECT ?', args: [undefined as never] })).rejects.toThrow(
      /undefined/,
    );
  });

  it('a failing batch rolls back whole, with the engine error in libSQL shape', async () => {
    await client.execute("INSERT INTO t (name) VALUES ('taken')");
    const error = await client
      .batch(
        ["INSERT INTO t (name) VALUES ('new')", "INSERT INTO t (name) VALUES ('taken')"],
        'write',
      )
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LibsqlError);
    expect((error as LibsqlError).code).toBe('SQLITE_CONSTRAINT');
    const names = (await client.execute('SELECT name FROM t ORDER BY name')).rows.map(
      (r) => r.name,
    );
    expect(names).toEqual(['taken']);
    // the connection is usable after the rollback
    expect((await client.execute('SELECT count(*) AS n FROM t')).rows[0]!.n).toBe(1);
  });

  it('keeps a bounded statement cache that survives evictions and schema changes', async () => {
    for (let i = 0; i < 10; i++) {
      await client.execute({ sql: `SELECT ${i} AS v, count(*) FROM t`, args: [] });
    }
    await client.execute('ALTER TABLE t RENAME TO t2');
    await expect(client.execute('SELECT count(*) FROM t')).rejects.toThrow(/no such table/);
    await client.execute('ALTER TABLE t2 RENAME TO t');
    expect((await client.execute('SELECT count(*) AS n FROM t')).rows[0]!.n).toBe(0);
  });

  it('an interactive transaction has a connection of its own; its writes show after commit', async () => {
    const tx = await client.transaction('write');
    await tx.execute("INSERT INTO t (name) VALUES ('in-tx')");
    expect((await client.execute('SELECT count(*) AS n FROM t')).rows[0]!.n).toBe(0);
    await tx.commit();
    expect(tx.closed).toBe(true);
    expect((await client.execute('SELECT count(*) AS n FROM t')).rows[0]!.n).toBe(1);
  });

  it('refuses interactive transactions in memory, and every call once closed', async () => {
    const memory = await fresh(':memory:');
    await expect(memory.transaction()).rejects.toThrow(/interactive transactions need a file/);
    memory.close();
    await expect(memory.execute('SELECT 1')).rejects.toThrow(/closed/);
  });
});
