import { describe, expect, it } from 'vitest';
import { agreement } from './validate-wrk.ts';

describe('make bench-validate: do autocannon and wrk agree?', () => {
  const wrk = [8000, 9100, 5600, 5400, 7800, 6900];

  it('the same figures agree', () => {
    expect(agreement(wrk, wrk)).toEqual({
      autocannonOverWrk: { ratio: 1, low: 1, high: 1 },
      agree: true,
    });
  });

  it('a generator 30% short in every round disagrees, however fast the host was', () => {
    const short = wrk.map((x, i) => x * (0.68 + 0.01 * i));
    const { autocannonOverWrk, agree } = agreement(wrk, short);
    expect(autocannonOverWrk.high).toBeLessThan(0.85);
    expect(agree).toBe(false);
  });

  it('rounds scattered around equal agree: the interval reaches into the tolerance', () => {
    const scattered = wrk.map((x, i) => x * [0.8, 1.25, 0.95, 1.1, 0.75, 1.2][i]!);
    expect(agreement(wrk, scattered).agree).toBe(true);
  });
});
