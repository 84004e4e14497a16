import { describe, expect, it } from 'vitest';
import { capacityOptionsFromEnv, judgeStep } from './run.ts';
import { fitUsl, instancesFor, UslInputError, usl } from './usl.ts';

const levels = [1, 2, 4, 8, 12, 16, 24, 32, 48, 64];

describe('Universal Scalability Law fit', () => {
  it.each([
    { lambda: 850, sigma: 0.05, kappa: 0.0008 },
    { lambda: 40, sigma: 0.3, kappa: 0.002 },
    { lambda: 3000, sigma: 0.02, kappa: 0.00005 },
  ])('recovers λ=$lambda σ=$sigma κ=$kappa from exact data within 1%', (p) => {
    const model = usl(p.lambda, p.sigma, p.kappa);
    const fit = fitUsl(levels.map((n) => ({ n, x: model(n) })));
    expect(Math.abs(fit.lambda / p.lambda - 1)).toBeLessThan(0.01);
    expect(Math.abs(fit.sigma / p.sigma - 1)).toBeLessThan(0.01);
    expect(Math.abs(fit.kappa / p.kappa - 1)).toBeLessThan(0.01);
    expect(fit.nStar).toBeCloseTo(Math.sqrt((1 - p.sigma) / p.kappa), 0);
    expect(fit.r2).toBeGreaterThan(0.9999);
  });

  it('N* and X_max are where the curve peaks', () => {
    const fit = fitUsl(levels.map((n) => ({ n, x: usl(100, 0.1, 0.001)(n) })));
    const model = usl(fit.lambda, fit.sigma, fit.kappa);
    expect(model(fit.nStar)).toBeCloseTo(fit.xMax, 6);
    expect(model(fit.nStar)).toBeGreaterThan(model(fit.nStar - 1));
    expect(model(fit.nStar)).toBeGreaterThan(model(fit.nStar + 1));
  });

  it('refuses what it cannot fit, by name', () => {
    expect(() => fitUsl([1, 2, 4, 8, 16].map((n) => ({ n, x: n })))).toThrow(
      /at least 6 concurrency levels; got 5/,
    );
    expect(() => fitUsl(levels.map((n) => ({ n, x: n === 8 ? 0 : n })))).toThrow(
      /throughput must be positive; got x=0 at n=8/,
    );
    expect(() => fitUsl(levels.slice(1).map((n) => ({ n, x: n })))).toThrow(UslInputError);
  });

  it('what-if: instances for a target rate with headroom', () => {
    expect(instancesFor(10_000, 2_000, 0.3)).toBe(8); // 10,000 / 1,400
    expect(instancesFor(1_000, 2_000, 0)).toBe(1);
    expect(() => instancesFor(1_000, 2_000, 1)).toThrow(/headroom must be in \[0, 1\)/);
  });
});

describe('capacity steps and options', () => {
  it('flags a saturated generator and a step that did not hold N in flight, instead of fitting them', () => {
    const base = { n: 8, x: 1000, meanMs: 8, p99Ms: 20, errors: 0, generatorCpu: 0.3 };
    expect(judgeStep(base)).toMatchObject({ littleRatio: 1, flagged: null });
    expect(judgeStep({ ...base, generatorCpu: 0.97 }).flagged).toMatch(
      /generator used 97% of a core/,
    );
    // 1,000 req/s x 2 ms = 2 in flight, not 8: the generator fell short
    expect(judgeStep({ ...base, meanMs: 2 }).flagged).toMatch(/X·R = 2.00 in flight, not 8/);
  });

  it('bad input is a usage error naming the variable and the value', () => {
    expect(() => capacityOptionsFromEnv({ LEVELS: '1,2,4' })).toThrow(
      /at least 8 distinct levels; got 3/,
    );
    expect(() => capacityOptionsFromEnv({ LEVELS: '2,4,6,8,10,12,14,16' })).toThrow(
      /must include 1/,
    );
    expect(() => capacityOptionsFromEnv({ LEVELS: '1,2,x' })).toThrow(/LEVELS: "x"/);
    expect(() => capacityOptionsFromEnv({ PRESET: 'turbo' })).toThrow(/PRESET="turbo"/);
    expect(() => capacityOptionsFromEnv({ HEADROOM: '1.5' })).toThrow(/HEADROOM="1.5"/);
    expect(() => capacityOptionsFromEnv({ SCENARIO: 'health' })).toThrow(/SCENARIO="health"/);
    expect(() => capacityOptionsFromEnv({ LADDER: '0.5,0' })).toThrow(/LADDER: "0"/);
    expect(capacityOptionsFromEnv({})).toMatchObject({
      scenario: 'members',
      presets: ['baseline', 'recommended'],
      levels: [1, 2, 4, 8, 12, 16, 24, 32],
      ladder: [0.25, 0.5, 0.75, 0.9, 1, 1.1],
    });
  });
});
