import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { createApp } from '../../system/api/app.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { openDatabase } from '../../system/db/client.ts';
import { nodeSha256 } from '../../system/hash-node.ts';
import { createLevers } from '../../system/levers/levers.ts';
import { type PresetName, resolveLevers } from '../../system/levers/presets.ts';
import { createChangePublisher } from '../../system/sync/publisher.ts';
import type { Figure } from '../results.ts';
import { type BenchSuite, checkAborted, copyBenchDatabase, type SuiteContext } from './context.ts';

/**
 * A Zipf read/write mix over the bench seed, in-process with the real database and the
 * real publisher (so writes invalidate exactly as in production): reads pick an org by
 * Zipf rank (big orgs are hot), 90% members pages, 5% project lists, 5% project
 * creates, after a warm-up that reads each org's pages once. The cache hit ratio (from
 * `X-Cache`; over every read, and over the reads of keys already read), stale reads (a
 * project list missing a project whose create had already answered), sequential ops/s.
 */
export const zipfSuite: BenchSuite = {
  description:
    'Zipf read/write mix in-process (90% members, 5% project lists, 5% creates): hit ratio, stale reads, ops/s',
  databases: ['file'],
  run: async (ctx) => {
    const figures: Figure[] = [];
    for (const preset of ctx.options.presets) {
      checkAborted(ctx);
      if (ctx.options.profile !== 'full' && (preset === 'batch' || preset === 'coalesce')) {
        ctx.warnings.push(`zipf: ${preset} (no cache) runs in PROFILE=full only`);
        continue;
      }
      if (preset === 'cache-redis') {
        ctx.warnings.push(
          'zipf: the in-process mix has no Redis; cache-redis is measured by the members suite',
        );
        continue;
      }
      ctx.progress(`zipf: ${ctx.settings.zipfOps} ops, ${preset}`);
      const out = await zipfMix(ctx, preset, ctx.settings.zipfOps);
      const base = { suite: 'zipf', scenario: 'Zipf read/write mix', preset, samples: out.reads };
      figures.push(
        {
          ...base,
          metric: 'hit ratio',
          value: percent(out.hitRatio),
          unit: '%',
          ...(out.hitRatio === null
            ? {}
            : { note: `${out.coldMisses} cold misses (a key's first read) included` }),
        },
        {
          ...base,
          metric: 'hit ratio, warm keys',
          value: percent(out.warmHitRatio),
          unit: '%',
          ...(out.warmHitRatio === null
            ? {}
            : {
                note: `without the ${out.coldMisses} cold misses: what invalidation and eviction cost`,
              }),
        },
        { ...base, metric: 'stale reads', value: out.staleReads, unit: 'reads' },
        {
          ...base,
          metric: 'ops/s',
          value: out.opsPerSecond,
          unit: 'ops/s',
          note: 'in-process, sequential',
        },
      );
    }
    return figures;
  },
};

const membersPath = (orgId: string) => `/api/orgs/${orgId}/members?limit=20`;
const projectsPath = (orgId: string, cursor: string | null) =>
  `/api/orgs/${orgId}/projects?limit=100${cursor ? `&cursor=${cursor}` : ''}`;

const percent = (ratio: number | null) => (ratio === null ? null : Math.round(ratio * 1000) / 10);

export async function zipfMix(ctx: SuiteContext, preset: PresetName, ops: number, seed = 1) {
  const { setup } = ctx;
  const database = await openDatabase({ url: `file:${copyBenchDatabase(ctx, 'zipf')}` });
  const levers = createLevers(resolveLevers(preset));
  const publisher = createChangePublisher({
    database,
    invalidate: (rows) => levers.invalidate(rows),
    deliver: () => {},
  });
  await publisher.start();
  // hashing as on Node in production (node.ts): synchronous node:crypto, not Web Crypto
  const app = createApp({
    database,
    sessions: createSessionVerifier({ jwtKey: setup.keys.publicKey, sha256: nodeSha256 }),
    sha256: nodeSha256,
    levers,
    onCommitted: () => publisher.drain(),
  });
  try {
    // orgs by size, each with one admin and a token
    const sizes = new Map<string, number>();
    for (const m of setup.fixture.memberships) sizes.set(m.orgId, (sizes.get(m.orgId) ?? 0) + 1);
    const orgs = [...setup.fixture.organizations].sort(
      (a, b) => (sizes.get(b.id) ?? 0) - (sizes.get(a.id) ?? 0),
    );
    const tokens = await Promise.all(
      orgs.map((org) => {
        const admin = setup.fixture.memberships.find(
          (m) => m.orgId === org.id && m.role === 'admin',
        )!;
        return mintSessionToken({
          privateKeyPem: setup.keys.privateKey,
          userId: admin.userId,
          orgId: org.id,
          role: 'admin',
        });
      }),
    );
    const rng = xoroshiro128plus(seed);
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
    const lookups = new CacheLookups();
    let staleReads = 0;
    // warm-up, not measured: each org's members page and first project page read once, on
    // every preset (the code's JIT too), so ops/s is the steady state's and the cache
    // starts full rather than cold
    for (const [k, org] of orgs.entries()) {
      if (k % 32 === 0) checkAborted(ctx);
      const headers = { authorization: `Bearer ${tokens[k]}` };
      for (const path of [membersPath(org.id), projectsPath(org.id, null)]) {
        const res = await app.request(path, { headers });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`zipf warm-up: GET ${path} answered ${res.status}`);
        lookups.saw(path);
      }
    }
    const started = performance.now();
    for (let i = 0; i < ops; i++) {
      if (i % 256 === 0) checkAborted(ctx);
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
        continue;
      }
      if (roll < 0.1) {
        // read every page of the project list (each page is a cacheable read)
        const ids = new Set<string>();
        let cursor: string | null = null;
        do {
          const page = projectsPath(org.id, cursor);
          const res = await app.request(page, { headers });
          lookups.count(page, res.headers.get('x-cache'));
          const body = (await res.json()) as {
            data: Array<{ id: string }>;
            nextCursor: string | null;
          };
          for (const p of body.data) ids.add(p.id);
          cursor = body.nextCursor;
        } while (cursor);
        if ([...(created.get(org.id) ?? [])].some((id) => !ids.has(id))) staleReads += 1;
      } else {
        const path = membersPath(org.id);
        const res = await app.request(path, { headers });
        lookups.count(path, res.headers.get('x-cache'));
        await res.arrayBuffer();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      ...lookups.summary(),
      staleReads,
      opsPerSecond: Math.round(ops / seconds),
    };
  } finally {
    publisher.stop();
    await database.close();
  }
}

/**
 * The cache's answers (`X-Cache`) to the mix's reads, by key (the path: one org per
 * path, one token per org). A miss on a key never read before is cold: any cache misses
 * it, whatever its invalidation. Every later miss or stale answer is what invalidation
 * (and eviction) cost: the warm hit ratio leaves the cold misses out.
 */
export class CacheLookups {
  private readonly seen = new Set<string>();
  private hits = 0;
  private lookups = 0;
  private cold = 0;
  private reads = 0;

  /** A key read before the measured reads (the warm-up): its next miss is not cold. */
  saw(key: string): void {
    this.seen.add(key);
  }

  count(key: string, state: string | null): void {
    this.reads += 1;
    const first = !this.seen.has(key);
    this.seen.add(key);
    // no X-Cache: the preset has no cache level on this route
    if (state !== 'hit' && state !== 'miss' && state !== 'stale') return;
    this.lookups += 1;
    if (state === 'hit') this.hits += 1;
    else if (first && state === 'miss') this.cold += 1;
  }

  summary() {
    const warm = this.lookups - this.cold;
    return {
      reads: this.reads,
      hitRatio: this.lookups === 0 ? null : this.hits / this.lookups,
      warmHitRatio: warm === 0 ? null : this.hits / warm,
      coldMisses: this.cold,
    };
  }
}
