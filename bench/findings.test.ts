import { describe, expect, it } from 'vitest';
import { benchOptionsFromEnv } from './config.ts';
import { buildFindings } from './findings.ts';
import type { Figure } from './results.ts';
import { WORKERD_SCENARIO } from './suites/workerd.ts';

const rps = (preset: string, runtime: 'node' | 'workerd', value: number): Figure => ({
  suite: 'workerd',
  scenario: WORKERD_SCENARIO,
  preset,
  metric: `req/s: ${runtime}`,
  value,
  unit: 'req/s',
  samples: 100,
});

describe('the workerd findings rows', () => {
  const options = benchOptionsFromEnv({ SUITE: 'workerd', RTT: '10' });
  const figures = [
    rps('baseline', 'workerd', 16),
    rps('batch', 'workerd', 140),
    rps('recommended', 'workerd', 60),
    rps('recommended (edge)', 'workerd', 750),
    rps('recommended (edge)', 'node', 240),
    {
      ...rps('recommended (edge)', 'workerd', 3.1),
      metric: 'req/s: workerd ÷ Node',
      unit: 'x',
    },
  ];
  const row = (finding: string) =>
    buildFindings(figures, options).find((f) => f.finding === finding)!;

  it('judges batching and each cache level against baseline on workerd', () => {
    expect(row('Multiple round trips (throughput, workerd)')).toMatchObject({
      verdict: 'pass',
      judged: { preset: 'batch', value: 140, ratio: 8.75 },
    });
    // 60 / 16 < 5: a memory level that buys too little fails
    expect(row('Cache strategy on workerd (memory level)').verdict).toBe('fail');
    const edge = row('Cache strategy on workerd (edge level)');
    expect(edge).toMatchObject({
      verdict: 'pass',
      judged: { preset: 'recommended (edge)', value: 750 },
    });
    expect(edge.note).toMatch(/Node over the same sqld: 240 req\/s; workerd ÷ Node 3.1x/);
  });

  it('says not run when the suite did not run', () => {
    const quick = benchOptionsFromEnv({});
    const rows = buildFindings(figures, quick).filter((f) => f.finding.includes('workerd'));
    expect(rows.map((r) => r.verdict)).toEqual(['not run', 'not run', 'not run']);
  });
});
