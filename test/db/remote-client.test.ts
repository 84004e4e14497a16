import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { driverFetch, openDatabase } from '../../system/db/client.ts';

/**
 * The sqld/Turso client against a real sqld, through the app's own `driverFetch`
 * (undici's `request` instead of `fetch`). sqld gzips an answer whenever the request
 * accepts it, and `fetch` accepts gzip by default: the driver's HTTP asks for nothing.
 */
describe('remote database client (real sqld)', () => {
  let sqld: SqldServer;
  beforeAll(async () => {
    sqld = await startSqld();
  });
  afterAll(async () => {
    await sqld.stop();
  });

  const pipeline = (sql: string) =>
    new Request(`${sqld.url}/v2/pipeline`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql } }, { type: 'close' }] }),
    });

  it('sqld compresses for a default fetch (the cost the driver avoids)', async () => {
    const response = await fetch(pipeline('SELECT 1'));
    expect(response.headers.get('content-encoding')).toBe('gzip');
  });

  it('driverFetch answers as fetch would, uncompressed', async () => {
    const big = `SELECT '${'x'.repeat(5000)}' AS v`;
    const [ours, theirs] = await Promise.all([driverFetch(pipeline(big)), fetch(pipeline(big))]);
    expect(ours.status).toBe(200);
    expect(ours.ok).toBe(true);
    expect(ours.headers.get('content-encoding')).toBeNull();
    expect(ours.headers.get('content-type')).toBe(theirs.headers.get('content-type'));
    type Answer = { results: Array<{ response?: { result?: { rows: unknown } } }> };
    const rows = (answer: Answer) => answer.results[0]?.response?.result?.rows;
    const body = (await ours.json()) as Answer;
    expect(rows(body)).toEqual([[{ type: 'text', value: 'x'.repeat(5000) }]]);
    expect(rows(body)).toEqual(rows((await theirs.json()) as Answer));
    // a GET without a body, and an error status passed through
    expect((await driverFetch(new Request(`${sqld.url}/v3`))).status).toBe(200);
    expect((await driverFetch(new Request(`${sqld.url}/no-such-path`))).status).toBe(404);
  });

  it('the app client reads and writes through it, batches and streamed cursors included', async () => {
    const database = await openDatabase({ url: sqld.url });
    try {
      await database.client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      const rows = Array.from({ length: 200 }, (_, i) => `${i}:${'y'.repeat(500)}`);
      const results = await database.client.batch(
        rows.map((v) => ({ sql: 'INSERT INTO t (v) VALUES (?)', args: [v] })),
        'write',
      );
      expect(results.map((r) => r.rowsAffected)).toEqual(rows.map(() => 1));
      const read = await database.client.execute('SELECT v FROM t ORDER BY id');
      expect(read.rows.map((r) => r.v)).toEqual(rows);
    } finally {
      await database.close();
    }
  });
});
