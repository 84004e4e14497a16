import { describe, expect, it } from 'vitest';
import { BUDGETS } from '../budgets.ts';
import { usl } from '../capacity/usl.ts';
import {
  CAPACITY_LEVELS,
  CAPACITY_ROUNDS,
  type CapacityStep,
  capacityEstimate,
} from './capacity.ts';
import { evaluate } from './evaluate.ts';
import { gateOptionsFromEnv } from './options.ts';
import { GateUsageError } from './types.ts';

const budget = BUDGETS.find((b) => b.scenario === 'members' && b.preset === 'recommended')!;

/** Steps of two sides following known USL curves, with a few percent of seeded noise. */
function steps(
  base: [number, number, number],
  head: [number, number, number],
  blocks = 2,
): CapacityStep[] {
  const b = usl(...base);
  const h = usl(...head);
  let seed = 7;
  const noise = () => {
    seed = (seed * 16807) % 2147483647;
    return 1 + ((seed / 2147483647) * 2 - 1) * 0.03;
  };
  const out: CapacityStep[] = [];
  for (let block = 0; block < blocks; block++) {
    for (const n of CAPACITY_LEVELS) {
      for (let round = 0; round < CAPACITY_ROUNDS; round++) {
        // the machine's weather moves both sides of a round alike
        const weather = noise();
        out.push({
          block,
          round,
          n,
          base: b(n) * weather * noise(),
          head: h(n) * weather * noise(),
        });
      }
    }
  }
  return out;
}

const measured = (capacity: CapacityStep[]) => ({
  deterministic: { base: {}, head: {} },
  rounds: { base: [], head: [] },
  pairs: [],
  capacity,
});
const options = { metrics: ['x_max', 'n_star'] as const, timing: true, rounds: 6 };

describe('the gate capacity check', () => {
  it('passes the same curve and flags a 20% lower ceiling, with an interval on the worse side', () => {
    const same = evaluate(
      budget,
      measured(steps([900, 0.05, 0.002], [900, 0.05, 0.002])),
      { ...options, metrics: [...options.metrics] },
      ['ref-2core'],
      true,
    );
    expect(same.map((r) => [r.metric, r.verdict])).toEqual([
      ['x_max', 'pass'],
      ['n_star', 'pass'],
    ]);
    const lower = evaluate(
      budget,
      measured(steps([900, 0.05, 0.002], [720, 0.05, 0.002])),
      { ...options, metrics: ['x_max'] },
      ['ref-2core'],
      true,
    );
    const row = lower.find((r) => r.metric === 'x_max')!;
    expect(row.verdict).toBe('regression');
    expect(row.ratio).toBeCloseTo(0.8, 1);
    expect(row.interval![1]).toBeLessThan(1);
    expect(row.unit).toBe('req/s');
  });

  it('flags a peak that comes at lower concurrency (more coherency cost)', () => {
    const estimate = capacityEstimate('n_star', steps([900, 0.05, 0.002], [900, 0.05, 0.008]));
    // N* = sqrt((1 - σ) / κ): 21.8 -> 10.9
    expect(estimate.base).toBeCloseTo(21.8, -0.5);
    expect(estimate.ratio).toBeCloseTo(0.5, 1);
    expect(estimate.high).toBeLessThan(1);
  });

  it('compares peaks out of the measured range as equal (held at twice the highest level)', () => {
    // no coherency cost: N* is infinite, or far beyond 32 where noise puts a small κ
    const flat = steps([900, 0.1, 0], [900, 0.1, 0]);
    const estimate = capacityEstimate('n_star', flat);
    expect(estimate).toMatchObject({ base: 64, head: 64, ratio: 1 });
  });

  it('is seeded: the same steps give the same interval', () => {
    const s = steps([900, 0.05, 0.002], [850, 0.05, 0.002]);
    expect(capacityEstimate('x_max', s)).toEqual(capacityEstimate('x_max', s));
  });

  it('is asked for by name, and only against a base under load', () => {
    expect(gateOptionsFromEnv({}).metrics).not.toContain('x_max');
    expect(() => gateOptionsFromEnv({ METRICS: 'x_max' })).toThrow(GateUsageError);
    expect(() => gateOptionsFromEnv({ METRICS: 'n_star', BASE: 'HEAD~1', TIMING: '0' })).toThrow(
      /set BASE=<ref> \(and not TIMING=0\)/,
    );
    expect(gateOptionsFromEnv({ METRICS: 'x_max,n_star', BASE: 'HEAD~1' }).metrics).toEqual([
      'x_max',
      'n_star',
    ]);
  });
});
