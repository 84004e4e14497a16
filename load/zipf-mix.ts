import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { createApp } from '../system/api/app.ts';
import { createSessionVerifier } from '../system/auth/verifier.ts';
import { openDatabase } from '../system/db/client.ts';
import { createLevers } from '../system/levers/levers.ts';
import { resolveLevers } from '../system/levers/presets.ts';
import { createChangePublisher } from '../system/sync/publisher.ts';
import { benchSetup } from './bench-setup.ts';

/**
 * A Zipf read/write mix over the bench seed, in-process with the real database and the
 * real publisher (so writes invalidate exactly as in production): reads pick an org by
 * Zipf rank (big orgs are hot), 90% members pages, 5% project lists, 5% project creates.
 * Reports the cache hit ratio (from `X-Cache`) and stale reads: a project list that
 * misses a project whose create had already answered.
 *
 *   npx tsx load/zipf-mix.ts [--preset cache-memory] [--ops 5000] [--seed 1] [--invalidation precise|group]
 */
const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'cache-memory' },
    ops: { type: 'string', default: '5000' },
    seed: { type: 'string', default: '1' },
    invalidation: { type: 'string', default: 'precise' },
  },
  strict: true,
});
const ops = Number(values.ops);
if (!Number.isInteger(ops) || ops < 1) {
  console.error(`zipf-mix: --ops must be a positive integer, got ${JSON.stringify(values.ops)}`);
  process.exit(2);
}
const levers = resolveLevers(values.preset ?? '', {
  cache: { invalidation: values.invalidation as 'precise' | 'group' },
});
const setup = await benchSetup();
// a private copy: every run starts from the same data, whatever earlier runs wrote
const copy = join(mkdtempSync(join(tmpdir(), 'zipf-mix-')), 'bench.db');
copyFileSync('.data/bench.db', copy);
const database = await openDatabase({ url: `file:${copy}` });
const running = createLevers(levers);
const publisher = createChangePublisher({
  database,
  invalidate: (rows) => running.invalidate(rows),
  deliver: () => {},
});
await publisher.start();
const app = createApp({
  database,
  sessions: createSessionVerifier({ jwtKey: setup.keys.publicKey }),
  levers: running,
  onCommitted: () => publisher.drain(),
});

// orgs by size, each with one admin and a token
const sizes = new Map<string, number>();
for (const m of setup.fixture.memberships) sizes.set(m.orgId, (sizes.get(m.orgId) ?? 0) + 1);
const orgs = [...setup.fixture.organizations].sort(
  (a, b) => (sizes.get(b.id) ?? 0) - (sizes.get(a.id) ?? 0),
);
const tokens = await Promise.all(
  orgs.map((org) => {
    const admin = setup.fixture.memberships.find((m) => m.orgId === org.id && m.role === 'admin')!;
    return mintSessionToken({
      privateKeyPem: setup.keys.privateKey,
      userId: admin.userId,
      orgId: org.id,
      role: 'admin',
    });
  }),
);
const rng = xoroshiro128plus(Number(values.seed));
const cdf: number[] = [];
let total = 0;
for (let k = 0; k < orgs.length; k++) {
  total += 1 / (k + 1);
  cdf.push(total);
}
const pickOrg = () => {
  const target = uniformFloat64(rng) * total;
  return Math.max(
    0,
    cdf.findIndex((c) => c >= target),
  );
};

const created = new Map<string, Set<string>>();
const results = { hit: 0, miss: 0, stale: 0, other: 0, staleReads: 0, reads: 0, writes: 0 };
function count(state: string | null): void {
  results[(state as 'hit' | 'miss' | 'stale' | null) ?? 'other'] += 1;
  results.reads += 1;
}
const started = performance.now();
for (let i = 0; i < ops; i++) {
  const k = pickOrg();
  const org = orgs[k]!;
  const headers = { authorization: `Bearer ${tokens[k]}` };
  const roll = uniformFloat64(rng);
  if (roll < 0.05) {
    const res = await app.request(`/api/orgs/${org.id}/projects`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `zipf-${i}` }),
    });
    const project = (await res.json()) as { id: string };
    created.set(org.id, (created.get(org.id) ?? new Set()).add(project.id));
    results.writes += 1;
    continue;
  }
  if (roll < 0.1) {
    // read every page of the project list (each page is a cacheable read)
    const ids = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = `/api/orgs/${org.id}/projects?limit=100${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await app.request(page, { headers });
      count(res.headers.get('x-cache'));
      const body = (await res.json()) as { data: Array<{ id: string }>; nextCursor: string | null };
      for (const p of body.data) ids.add(p.id);
      cursor = body.nextCursor;
    } while (cursor);
    if ([...(created.get(org.id) ?? [])].some((id) => !ids.has(id))) results.staleReads += 1;
  } else {
    const res = await app.request(`/api/orgs/${org.id}/members?limit=20`, { headers });
    count(res.headers.get('x-cache'));
    await res.arrayBuffer();
  }
}
const seconds = (performance.now() - started) / 1000;
publisher.stop();
database.close();
rmSync(dirname(copy), { recursive: true, force: true });
const lookups = results.hit + results.miss + results.stale;
console.log(
  JSON.stringify(
    {
      preset: levers.preset,
      invalidation: levers.cache.invalidation,
      ops,
      reads: results.reads,
      writes: results.writes,
      hitRatio: lookups === 0 ? null : +(results.hit / lookups).toFixed(4),
      cache: {
        hit: results.hit,
        miss: results.miss,
        stale: results.stale,
        uncached: results.other,
      },
      staleReads: results.staleReads,
      opsPerSecond: Math.round(ops / seconds),
      note: 'in-process, sequential; a stale read = a project list missing an already-acknowledged create',
    },
    null,
    2,
  ),
);
