import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { startSqld } from '../../load/infra/sqld.ts';
import { createApp } from '../../system/api/app.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { openDatabase } from '../../system/db/client.ts';
import type { Database } from '../../system/db/database.ts';
import { runMigrations } from '../../system/db/migrate.ts';
import { createDbGuard, resolveRecoveryConfig } from '../../system/levers/recovery.ts';
import { testKeys } from '../support/harness.ts';
import { castFrom } from '../support/people.ts';

// A real sqld that goes away and comes back: breaker opens, sheds load fast, recovers.
describe('recovery lever: database down and back', () => {
  let sqld: Awaited<ReturnType<typeof startSqld>>;
  let database: Database;
  /** Calls that reached the database client (past the breaker). */
  let reached = 0;
  const guard = createDbGuard(
    resolveRecoveryConfig({ breakerThreshold: 3, halfOpenAfterMs: 300, timeoutMs: 1000 }),
  );
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);
  let app: ReturnType<typeof createApp>;
  let token: string;

  beforeAll(async () => {
    sqld = await startSqld({ keepDir: true });
    database = await openDatabase({
      url: sqld.url,
      guard: (op) =>
        guard.run(() => {
          reached += 1;
          return op();
        }),
    });
    await runMigrations(database.db);
    await loadFixture(database, fixture);
    app = createApp({
      database,
      sessions: createSessionVerifier({ jwtKey: testKeys().publicKey }),
    });
    token = await mintSessionToken({
      privateKeyPem: testKeys().privateKey,
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
    });
  });
  afterAll(async () => {
    await database?.close();
    await sqld?.stop();
  });

  const members = () =>
    app.request(`/api/orgs/${cast.orgA.id}/members?limit=5`, {
      headers: { authorization: `Bearer ${token}` },
    });

  it('503 + Retry-After while down, fast once the breaker is open, 200 after recovery', async () => {
    expect((await members()).status).toBe(200);
    await sqld.stop();
    const down = [];
    for (let i = 0; i < 3; i++) down.push(await members());
    expect(down.map((r) => r.status)).toEqual([503, 503, 503]);
    expect(down[0]!.headers.get('retry-after')).toBe('2');
    expect(guard.state()).toBe('open');
    // shed at once: the open breaker answers 503 without a call reaching the database
    const before = reached;
    const shed = await members();
    expect(shed.status).toBe(503);
    expect(reached).toBe(before);

    sqld = await startSqld({ dir: sqld.dir, port: sqld.port, keepDir: true });
    await new Promise((r) => setTimeout(r, 350)); // half-open: the next call is the probe
    const back = await members();
    expect(back.status).toBe(200);
    expect(guard.state()).toBe('closed');
    expect((await back.json()).data).toHaveLength(5);
  });
});
