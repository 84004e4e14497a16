import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../fixtures/auth/keys.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type RedisServer, startRedis } from '../../load/infra/redis.ts';
import {
  type ServerProcess,
  startAppProcess,
  startServerProcess,
} from '../../load/infra/server-process.ts';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { openDatabase } from '../../system/db/client.ts';
import { runMigrations } from '../../system/db/migrate.ts';
import { testKeys } from '../support/harness.ts';
import { castFrom } from '../support/people.ts';
import { recordingClient } from '../support/server.ts';

// Two app processes sharing one sqld database, fanning out through a real Redis: one run
// from the source, one from the bundle, so the build is proven against the source.
describe('two app processes + sqld + Redis', () => {
  let sqld: SqldServer;
  let redis: RedisServer;
  let a: ServerProcess;
  let b: ServerProcess;
  const secret = generateWebhookSecret();
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);

  beforeAll(async () => {
    [sqld, redis] = await Promise.all([startSqld(), startRedis()]);
    const database = await openDatabase({ url: sqld.url });
    await runMigrations(database.db);
    await loadFixture(database, fixture);
    await database.close();
    const env = {
      DATABASE_URL: sqld.url,
      REDIS_URL: redis.url,
      DB_MIGRATE_ON_START: 'false',
      CLERK_JWT_KEY: testKeys().publicKey,
      CLERK_WEBHOOK_SIGNING_SECRET: secret,
      // no safety-net poll within the test: only Redis can wake the other process
      CHANGE_POLL_MS: '600000',
    };
    // one from the source (tsx), one from the production bundle (`npm run build`)
    [a, b] = await Promise.all([startServerProcess(env), startAppProcess(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await Promise.all([redis?.stop(), sqld?.stop()]);
  });

  it('a webhook received by one process reaches the clients of both', async () => {
    const token = await (await import('../../fixtures/auth/token.ts')).mintSessionToken({
      privateKeyPem: testKeys().privateKey,
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
    });
    const ws = (url: string) => `${url.replace('http', 'ws')}/ws`;
    const onA = recordingClient({ url: ws(a.url), token: () => token });
    const onB = recordingClient({ url: ws(b.url), token: () => token });
    await Promise.all([onA.ready(), onB.ready()]);

    const body = JSON.stringify(
      userEvent(
        'user.updated',
        { ...cast.memberA, firstName: 'Fanned', updatedAt: Date.now() },
        Date.now(),
      ),
    );
    const res = await fetch(`${a.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(secret, `msg_fanout_${Date.now()}`, body),
      body,
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe('applied');

    const deadline = Date.now() + 5000;
    while ((onA.changes.length === 0 || onB.changes.length === 0) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(onA.changes).toHaveLength(1);
    expect(onB.changes).toEqual(onA.changes);
    onA.close();
    onB.close();
  });
});
