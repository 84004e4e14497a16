import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../load/infra/redis.ts';
import { redisStore } from '../../system/levers/cache-redis.ts';
import { PRESET_NAMES } from '../../system/levers/presets.ts';
import { startTestApp, type TestContext, withLevers } from '../support/harness.ts';
import { castFrom, readCorpus, withoutRequestId } from '../support/people.ts';

/**
 * Levers never change answers: a corpus of reads over the seed gives byte-identical
 * bodies under every preset (twice each, so cached answers are compared too).
 */
describe('every preset answers the corpus exactly like baseline', () => {
  let redis: RedisServer;
  let client: Redis;
  const apps = new Map<string, TestContext>();

  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    for (const preset of PRESET_NAMES) {
      apps.set(
        preset,
        await startTestApp(
          'file',
          withLevers(preset, {}, { distributedStore: redisStore(client) }),
        ),
      );
    }
  }, 60_000);
  afterAll(async () => {
    for (const app of apps.values()) await app.close();
    client?.disconnect();
    await redis?.stop();
  });

  it('identical bodies and statuses for every request of the corpus', async () => {
    const base = apps.get('baseline')!;
    const cast = castFrom(base.fixture);
    const corpus = await readCorpus(cast, base.token);
    const strip = withoutRequestId;
    for (const [path, token] of corpus) {
      const expected = await base.call(path, { token });
      const expectedBody = strip(await expected.text());
      for (const [preset, app] of apps) {
        for (let round = 0; round < 2; round++) {
          const res = await app.call(path, { token });
          expect(res.status, `${preset} ${path}`).toBe(expected.status);
          expect(strip(await res.text()), `${preset} ${path} (round ${round})`).toBe(expectedBody);
        }
      }
    }
  });
});
