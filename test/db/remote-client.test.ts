import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { openDatabase } from '../../system/db/client.ts';

/**
 * The sqld/Turso client against a real sqld. sqld gzips a response whenever the request
 * accepts it, and fetch accepts gzip by default: a zlib stream per round trip on both
 * sides. The app's client asks for plain responses.
 */
describe('remote database client (real sqld)', () => {
  let sqld: SqldServer;
  beforeAll(async () => {
    sqld = await startSqld();
  });
  afterAll(async () => {
    await sqld.stop();
  });

  it('sqld compresses for a default fetch (the cost the client avoids)', async () => {
    const response = await fetch(`${sqld.url}/v2/pipeline`, {
      method: 'POST',
      body: JSON.stringify({ requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }] }),
    });
    expect(response.headers.get('content-encoding')).toBe('gzip');
  });

  it('every round trip asks for, and gets, an uncompressed response', async () => {
    const seen: Array<{ asked: string | null; got: string | null }> = [];
    const realFetch = globalThis.fetch;
    const spy = vi.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const response = await realFetch(input, init);
      seen.push({
        asked: input instanceof Request ? input.headers.get('accept-encoding') : null,
        got: response.headers.get('content-encoding'),
      });
      return response;
    });
    const database = await openDatabase({ url: sqld.url });
    try {
      await database.client.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      await database.client.batch(
        [{ sql: 'INSERT INTO t (v) VALUES (?)', args: ['x'.repeat(4000)] }],
        'write',
      );
      const rows = await database.client.execute('SELECT v FROM t');
      expect(rows.rows[0]?.v).toBe('x'.repeat(4000));
    } finally {
      database.close();
      spy.mockRestore();
    }
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen).toEqual(seen.map(() => ({ asked: 'identity', got: null })));
  });
});
