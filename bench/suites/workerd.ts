import { runLoad } from '../../load/generator.ts';
import type { LocalWorker } from '../../load/infra/miniflare.ts';
import { startBundledProcess } from '../../load/infra/server-process.ts';
import { SCENARIOS } from '../../load/scenarios.ts';
import type { PresetName } from '../../system/levers/presets.ts';
import type { Figure } from '../results.ts';
import { interval2, median, pairedBootstrapRatio, round2 } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  percentileFigure,
  type SuiteContext,
  startPresetServers,
} from './context.ts';

const EDGE_LEVEL = { DATAFLOW_CACHE_LEVEL: 'edge' };
/** Identical requests at once in the burst scenario (as the burst suite's quick profile). */
const WORKERD_BURST = 20;
/** The row of the bare runtimes' JSON hello. */
const BARE = 'bare hello';

interface WorkerdVariant {
  /** The row's preset label. */
  label: string;
  preset: PresetName;
  env?: Record<string, string>;
}

/**
 * What runs on both runtimes. `cache-redis` is the distributed level: Redis on Node,
 * Workers KV on workerd. `recommended (edge)` is the edge level: ETag/304 only on Node
 * (a load test sends no If-None-Match, so no cache at all), the colo's Cache API on
 * workerd. On workerd every cache level is keyed by the org object's generation.
 */
const WORKERD_VARIANTS: readonly WorkerdVariant[] = [
  { label: 'baseline', preset: 'baseline' },
  { label: 'batch', preset: 'batch' },
  { label: 'recommended', preset: 'recommended' },
  { label: 'recommended (edge)', preset: 'recommended', env: EDGE_LEVEL },
  { label: 'cache-redis', preset: 'cache-redis' },
];

export const WORKERD_SCENARIO = 'members page limit=50, Node vs workerd, remote DB';

/**
 * The members page on the runtime the stack deploys to: the Worker (`system/worker.ts`)
 * in miniflare, the real workerd, next to the Node app, both over the same sqld behind
 * the RTT relay (`RTT=`, 10 ms by default), for the presets a Worker serves. Closed model,
 * the two runtimes interleaved round by round; req/s, p50/p99 and workerd ÷ Node with an
 * interval over the paired rounds. `SUITE=workerd`, and in `PROFILE=full`.
 */
export const workerdSuite: BenchSuite = {
  description:
    'the members page on workerd (the Worker in miniflare) next to Node, both over sqld behind the RTT relay: req/s, p50/p99, workerd ÷ Node, each beside its bare runtime; a cold burst of identical requests: handler executions (SUITE=workerd or RUNTIME=workerd; PROFILE=full)',
  databases: ['file', 'sqld'],
  run: workerd,
};

async function workerd(ctx: SuiteContext): Promise<Figure[]> {
  // loaded when the suite runs: Miniflare alone took a second of every `make bench`'s start
  const [{ Miniflare }, { startLocalWorker, WORKER_COMPATIBILITY }, { buildWorker }] =
    await Promise.all([
      import('miniflare'),
      import('../../load/infra/miniflare.ts'),
      import('../../scripts/build.ts'),
    ]);
  const { settings, setup, signal } = ctx;
  const remote = await ctx.remoteDb();
  const variants = WORKERD_VARIANTS.filter((v) => ctx.options.presets.includes(v.preset));
  const presets = [...new Set(variants.map((v) => v.preset))];
  const node = await startPresetServers(ctx, 'workerd (the Node side)', { presets, db: 'remote' });
  const edge = variants.some((v) => v.env)
    ? await startPresetServers(ctx, 'workerd (the Node side, edge level)', {
        presets: ['recommended'],
        db: 'remote',
        env: EDGE_LEVEL,
      })
    : undefined;
  const nodeUrl = (v: WorkerdVariant) => (v.env ? edge! : node).get(v.preset)!.url;
  const script = await buildWorker('dist/bench-worker.mjs');
  // the physical anchors: each runtime's bare JSON hello, measured in the same rounds
  const bareNode = await startBundledProcess('load/infra/hello-server.ts', {});
  ctx.cleanups.push(() => bareNode.stop());
  const bareWorker = new Miniflare({
    modules: true,
    scriptPath: 'load/infra/hello-worker.js',
    ...WORKER_COMPATIBILITY,
    port: 0,
    host: '127.0.0.1',
    cf: false,
  });
  ctx.cleanups.push(() => bareWorker.dispose());
  const bareWorkerUrl = (await bareWorker.ready).origin;
  const workers = new Map<string, LocalWorker>();
  const stopWorkers = async () => {
    await Promise.all([...workers.values()].map((w) => w.dispose()));
  };
  ctx.cleanups.push(stopWorkers);
  try {
    ctx.progress(
      `workerd: starting the Worker in miniflare with ${variants.map((v) => v.label).join(', ')}`,
    );
    for (const variant of variants) {
      const worker = await startLocalWorker({
        scriptPath: script,
        bindings: {
          NODE_ENV: 'production',
          DATABASE_URL: remote.url,
          CLERK_JWT_KEY: setup.keys.publicKey,
          DATAFLOW_PRESET: variant.preset,
          ...variant.env,
        },
      });
      workers.set(variant.label, worker);
    }
    const durationSec = Math.max(settings.loadSec, 4);
    const rounds = Math.max(settings.rounds, 2);
    const measured = new Map<string, { rps: number; p50: number; p99: number; n: number }[]>();
    const run = async (key: string, baseUrl: string, scenario = SCENARIOS.members) => {
      const result = await runLoad({
        baseUrl,
        headers: setup.auth,
        scenario,
        vars: { orgId: setup.org.id },
        model: { kind: 'closed', connections: settings.connections },
        durationSec,
        warmupSec: 0.5,
        signal,
      });
      if (result.errors > 0) {
        const sample = await fetch(baseUrl + setup.membersPath, { headers: setup.auth });
        throw new Error(
          `${key}: ${result.errors} errors; one answer: ${sample.status} ${(await sample.text()).slice(0, 300)}`,
        );
      }
      measured.set(key, [
        ...(measured.get(key) ?? []),
        {
          rps: result.rps,
          p50: result.latencyMs.p50,
          p99: result.latencyMs.p99,
          n: result.requests,
        },
      ]);
    };
    for (let round = 1; round <= rounds; round++) {
      const anchors = [
        ['node', bareNode.url],
        ['workerd', bareWorkerUrl],
      ] as const;
      for (const [runtime, url] of round % 2 === 1 ? anchors : [...anchors].reverse()) {
        checkAborted(ctx);
        ctx.progress(
          `workerd: round ${round}/${rounds}, bare hello on ${runtime}, ${durationSec}s`,
        );
        await run(`${BARE}/${runtime}`, url, SCENARIOS.health);
      }
      for (const variant of variants) {
        const preset = variant.label;
        // ABBA: neither runtime always goes first
        const sides = [
          ['node', nodeUrl(variant)],
          ['workerd', workers.get(preset)!.url],
        ] as const;
        for (const [runtime, url] of round % 2 === 1 ? sides : [...sides].reverse()) {
          checkAborted(ctx);
          ctx.progress(
            `workerd: round ${round}/${rounds}, ${preset} on ${runtime}, sqld RTT ${remote.rttMs} ms, ${durationSec}s`,
          );
          await run(`${preset}/${runtime}`, url);
        }
      }
    }
    // the burst scenario on both runtimes: identical requests at once on a cold key (a
    // query parameter the route ignores makes the key new), counting the answers that were
    // built rather than shared (neither a cache hit nor a coalesced follower)
    const executions = new Map<string, number>();
    for (const variant of variants) {
      for (const [runtime, url] of [
        ['node', nodeUrl(variant)],
        ['workerd', workers.get(variant.label)!.url],
      ] as const) {
        checkAborted(ctx);
        const path = `${setup.membersPath}&burst=${encodeURIComponent(`${variant.label}-${runtime}-${Date.now()}`)}`;
        const answers = await Promise.all(
          Array.from({ length: WORKERD_BURST }, async () => {
            const res = await fetch(url + path, { headers: setup.auth });
            await res.arrayBuffer();
            if (res.status !== 200)
              throw new Error(`${variant.label} on ${runtime}: burst answered ${res.status}`);
            return (
              res.headers.get('x-cache') === 'hit' || res.headers.get('x-coalesced') === 'follower'
            );
          }),
        );
        executions.set(`${variant.label}/${runtime}`, answers.filter((shared) => !shared).length);
      }
    }
    const figures: Figure[] = [];
    for (const { label } of variants) {
      for (const runtime of ['node', 'workerd'] as const) {
        figures.push({
          suite: 'workerd',
          scenario: WORKERD_SCENARIO,
          preset: label,
          metric: `handler executions per burst: ${runtime}`,
          value: executions.get(`${label}/${runtime}`)!,
          unit: 'executions',
          samples: WORKERD_BURST,
          note: `${WORKERD_BURST} identical members requests at once on a cold key; answers neither a cache hit nor a coalesced follower`,
        });
      }
    }
    const note = `sqld behind a ${remote.rttMs} ms relay, closed model, ${settings.connections} connections, ${rounds} interleaved rounds of ${durationSec} s`;
    const bareRps = (runtime: string) =>
      median(measured.get(`${BARE}/${runtime}`)!.map((r) => r.rps));
    for (const runtime of ['node', 'workerd'] as const) {
      const runs = measured.get(`${BARE}/${runtime}`)!;
      figures.push({
        suite: 'workerd',
        scenario: WORKERD_SCENARIO,
        preset: BARE,
        metric: `req/s: ${runtime}`,
        value: Math.round(bareRps(runtime)),
        unit: 'req/s',
        samples: runs.reduce((a, r) => a + r.n, 0),
        note: `${runtime === 'node' ? 'bare node:http' : 'bare Worker (miniflare)'} JSON hello, the same load, interleaved with the app`,
      });
    }
    for (const { label: preset } of variants) {
      for (const runtime of ['node', 'workerd'] as const) {
        const runs = measured.get(`${preset}/${runtime}`)!;
        const samples = runs.reduce((a, r) => a + r.n, 0);
        const base = { suite: 'workerd', scenario: WORKERD_SCENARIO, preset, samples };
        figures.push(
          {
            ...base,
            metric: `req/s: ${runtime}`,
            value: Math.round(median(runs.map((r) => r.rps)) * 10) / 10,
            unit: 'req/s',
            note,
          },
          {
            ...base,
            metric: `÷ bare hello: ${runtime}`,
            value: Number((median(runs.map((r) => r.rps)) / bareRps(runtime)).toPrecision(3)),
            unit: 'x',
            note: `app req/s ÷ the bare ${runtime === 'node' ? 'node:http' : 'Worker'} hello of the same rounds`,
          },
          {
            ...base,
            metric: `latency p50: ${runtime}`,
            unit: 'ms',
            ...percentileFigure('p50', median(runs.map((r) => r.p50)), samples),
          },
          {
            ...base,
            metric: `latency p99: ${runtime}`,
            unit: 'ms',
            ...percentileFigure('p99', median(runs.map((r) => r.p99)), samples),
          },
        );
      }
      const ratio = pairedBootstrapRatio(
        measured.get(`${preset}/node`)!.map((r) => r.rps),
        measured.get(`${preset}/workerd`)!.map((r) => r.rps),
      );
      figures.push({
        suite: 'workerd',
        scenario: WORKERD_SCENARIO,
        preset,
        metric: 'req/s: workerd ÷ Node',
        value: round2(ratio.ratio),
        unit: 'x',
        samples: rounds,
        interval: interval2(ratio),
        note: 'median of the paired rounds; its interval a bootstrap of them',
      });
    }
    return figures;
  } finally {
    await stopWorkers();
    await node.stopAll();
    await edge?.stopAll();
    await bareNode.stop();
    await bareWorker.dispose();
  }
}
