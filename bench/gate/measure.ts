import { runLoad } from '../../load/generator.ts';
import { type ServerProcess, startServerProcess } from '../../load/infra/server-process.ts';
import { SCENARIOS, type Scenario, type ScenarioVars } from '../../load/scenarios.ts';
import {
  type Budget,
  CAPACITY_METRICS,
  type CapacityMetric,
  type GateMetric,
  TIMING_METRICS,
  type TimingMetric,
} from '../budgets.ts';
import { CAPACITY_LEVELS, CAPACITY_ROUNDS } from './capacity.ts';
import { probe } from './probe.ts';
import type { SeededFixture } from './seeded-db.ts';
import type { GateHooks, GateOptions, Measured, RoundValues, Side } from './types.ts';

/**
 * Measures one budget entry. `blocks` times: fresh servers for every side (started
 * together), the deterministic probe on the first block's fresh processes (cold
 * caches), a warm-up, then `rounds` timing rounds per side interleaved ABBA. Fresh
 * processes per block, because a process has a speed of its own (see `stats.ts`).
 */
export async function measureEntry(
  budget: Budget,
  sides: readonly Side[],
  fixture: SeededFixture,
  options: Pick<GateOptions, 'blocks' | 'rounds' | 'roundSec' | 'warmupSec' | 'timing' | 'metrics'>,
  hooks: GateHooks = {},
): Promise<Measured> {
  const progress = hooks.progress ?? (() => {});
  const scenario = SCENARIOS[budget.scenario];
  const { setup } = fixture;
  const entry = `${budget.scenario}/${budget.preset}`;
  const measured: Measured = {
    deterministic: { base: {}, head: {} },
    rounds: { base: [], head: [] },
    pairs: [],
    capacity: [],
  };
  const timed = options.timing && budget.timed && options.metrics.some(isTiming);
  const anchored =
    timed && budget.absolute.minVsBare !== undefined && options.metrics.includes('vs_bare');
  // the capacity check compares sides: only with a base
  const capacity =
    options.timing && sides.length === 2 && options.metrics.some((m) => isCapacity(m));
  const blocks = timed || capacity ? options.blocks : 1;
  // as deployed; the calibration knob is refused in production, so a calibration run
  // has every side in development mode (telemetry set alike below either way)
  const calibrating = sides.some((side) => side.env?.CALIBRATION_EXTRA_MS !== undefined);
  const nodeEnv = calibrating ? 'development' : 'production';
  for (let block = 0; block < blocks; block++) {
    const servers = new Map<Side['name'], { server: ServerProcess; vars: ScenarioVars }>();
    let anchor: ServerProcess | undefined;
    try {
      // the bare runtime the app's throughput is divided by (not code under test)
      if (anchored) anchor = await startServerProcess({}, 'load/infra/hello-server.ts');
      progress(
        `${entry}: block ${block + 1}/${blocks}, starting ${sides.map((x) => x.name).join(' and ')}`,
      );
      await Promise.all(
        sides.map(async (side) => {
          const server = await startServerProcess(
            {
              NODE_ENV: nodeEnv,
              DATABASE_URL: `file:${fixture.copy()}`,
              CLERK_JWT_KEY: setup.keys.publicKey,
              DATAFLOW_PRESET: budget.preset,
              SERVER_TIMING: 'false',
              OTEL_TRACES_EXPORTER: 'none',
              ...side.env,
            },
            'system/node.ts',
            side.cwd,
          );
          servers.set(side.name, { server, vars: { orgId: setup.org.id } });
        }),
      );
      const names = sides.map((x) => x.name);
      for (const name of names) {
        const s = servers.get(name)!;
        // every block probes its fresh processes (the probe also creates the scenario's
        // setup data); the first block's figures are the ones reported
        const figures = await probe(budget, s.server.url, setup, s.vars);
        if (block === 0) measured.deterministic[name] = figures;
      }
      if (capacity) await capacitySteps(block, names, servers);
      if (!timed) continue;
      progress(`${entry}: block ${block + 1}/${blocks}, warm-up`);
      await Promise.all(
        names.map((name) => {
          const s = servers.get(name)!;
          return round(s.server, s.vars, options.warmupSec);
        }),
      );
      for (let i = 0; i < options.rounds; i++) {
        if (hooks.signal?.aborted) throw new Error('interrupted');
        // ABBA: neither side always goes first (a warming or cooling machine cancels out)
        const order = i % 2 === 0 ? names : [...names].reverse();
        const got: Partial<Record<Side['name'], { values: RoundValues; samples: Float64Array }>> =
          {};
        for (const name of order) {
          progress(
            `${entry}: block ${block + 1}/${blocks}, round ${i + 1}/${options.rounds} ${name}`,
          );
          const s = servers.get(name)!;
          // the anchor right before each side: both see the same machine weather
          const bare = anchor ? await anchorRound(anchor.url, options.roundSec) : undefined;
          got[name] = await round(s.server, s.vars, options.roundSec);
          const vsBare = bare === undefined ? Number.NaN : got[name]!.values.rps / bare;
          measured.rounds[name].push({ ...got[name]!.values, vs_bare: vsBare, block });
        }
        if (got.base && got.head) {
          measured.pairs.push({ block, base: got.base.samples, head: got.head.samples });
        } else if (got.head) {
          measured.pairs.push({ block, base: new Float64Array(), head: got.head.samples });
        }
      }
    } finally {
      await Promise.all([...servers.values()].map((x) => x.server.stop()));
      await anchor?.stop();
    }
  }
  return measured;

  /** Every level, ABBA: a few seconds apart, both sides see the same machine weather. */
  async function capacitySteps(
    block: number,
    names: ReadonlyArray<Side['name']>,
    servers: Map<Side['name'], { server: ServerProcess; vars: ScenarioVars }>,
  ) {
    for (const n of CAPACITY_LEVELS) {
      for (let r = 0; r < CAPACITY_ROUNDS; r++) {
        if (hooks.signal?.aborted) throw new Error('interrupted');
        const order = r % 2 === 0 ? names : [...names].reverse();
        const x: Partial<Record<Side['name'], number>> = {};
        for (const name of order) {
          progress(
            `${entry}: block ${block + 1}/${blocks}, capacity ${n} in flight, round ${r + 1}/${CAPACITY_ROUNDS} ${name}`,
          );
          const s = servers.get(name)!;
          const result = await runLoad({
            baseUrl: s.server.url,
            headers: setup.auth,
            scenario,
            vars: s.vars,
            model: { kind: 'closed', connections: n },
            durationSec: options.roundSec,
            warmupSec: 0.25,
            ...(hooks.signal ? { signal: hooks.signal } : {}),
          });
          x[name] = result.rps;
        }
        measured.capacity.push({ block, round: r, n, base: x.base!, head: x.head! });
      }
    }
  }

  async function anchorRound(url: string, seconds: number): Promise<number> {
    const r = await runLoad({
      baseUrl: url,
      headers: {},
      scenario: ANCHOR,
      vars: { orgId: '' },
      model: { kind: 'closed', connections: budget.connections },
      durationSec: seconds,
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
    return r.rps;
  }

  async function round(server: ServerProcess, vars: ScenarioVars, seconds: number) {
    const cpuBefore = server.cpuMs();
    const r = await runLoad({
      baseUrl: server.url,
      headers: setup.auth,
      scenario,
      vars,
      model: { kind: 'closed', connections: budget.connections },
      durationSec: seconds,
      keepSamples: true,
      ...(hooks.signal ? { signal: hooks.signal } : {}),
    });
    const values: RoundValues = {
      p50: r.latencyMs.p50,
      p95: r.latencyMs.p95,
      p99: r.latencyMs.p99,
      rps: r.rps,
      error_rate: r.requests > 0 ? (100 * r.errors) / r.requests : 100,
      vs_bare: Number.NaN,
      // the round's whole run: its connections' setup and teardown are CPU per request too
      cpu_us: r.requests > 0 ? ((server.cpuMs() - cpuBefore) * 1000) / r.requests : Number.NaN,
      requests: r.requests,
    };
    return { values, samples: r.samples ?? new Float64Array() };
  }
}

/** The bare `node:http` hello of `load/infra/hello-server.ts`, as the generator's request mix. */
const ANCHOR: Pick<Scenario, 'requests'> = {
  requests: [{ name: 'bare hello', method: 'GET', path: '/', weight: 1, expect: 200 }],
};

export const isTiming = (m: GateMetric): m is TimingMetric =>
  (TIMING_METRICS as readonly string[]).includes(m);

export const isCapacity = (m: GateMetric): m is CapacityMetric =>
  (CAPACITY_METRICS as readonly string[]).includes(m);
