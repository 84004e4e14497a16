import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../scripts/build.ts';
import {
  compareProfiles,
  comparisonLines,
  comparisonMarkdown,
  type ProfileSummary,
  profileLines,
  profileMarkdown,
  summarizeProfiles,
} from './profiles.ts';

/**
 * A real profile of a real bundle: two processes of one program (as two blocks of the
 * overhead suite) that spend their time in a function of their own and in zod, built
 * as the app's bundle is (`buildServer`), profiled by `node --cpu-prof`.
 */
describe('the CPU profile summary', () => {
  // inside the tree, as the app's bundle: the build resolves zod from node_modules
  mkdirSync('dist', { recursive: true });
  const dir = resolve(mkdtempSync(join('dist', 'test-profiles-')));
  const profiles = join(dir, 'profiles');

  beforeAll(async () => {
    writeFileSync(
      join(dir, 'burn.ts'),
      [
        "import { z } from 'zod';",
        'const schema = z.object({ id: z.string(), n: z.number() });',
        'function validate(until: number): number {',
        '  let ok = 0;',
        '  while (performance.now() < until) {',
        '    for (let i = 0; i < 256; i++) ok += schema.safeParse({ id: String(i), n: i }).success ? 1 : 0;',
        '  }',
        '  return ok;',
        '}',
        'function spin(until: number): number {',
        '  let x = 0;',
        '  while (performance.now() < until) for (let i = 0; i < 4096; i++) x = (x * 31 + i) % 1000003;',
        '  return x;',
        '}',
        'const start = performance.now();',
        'console.log(spin(start + 600), validate(start + 900));',
      ].join('\n'),
    );
    await buildServer(join(dir, 'dist', 'burn.mjs'), join(dir, 'burn.ts'));
    for (const block of ['burn-block1', 'burn-block2']) {
      mkdirSync(join(profiles, block), { recursive: true });
      execFileSync(process.execPath, [
        '--cpu-prof',
        `--cpu-prof-dir=${join(profiles, block)}`,
        join(dir, 'dist', 'burn.mjs'),
      ]);
    }
  }, 30_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sums the blocks of a process and reads each frame through the source map', () => {
    const [summary, ...others] = summarizeProfiles(profiles, { root: dir, top: 50 });
    expect(others).toEqual([]);
    expect(summary).toMatchObject({ process: 'burn', thread: 0, files: 2 });
    // two processes of about 0.9 s each
    expect(summary!.busyMs).toBeGreaterThan(1000);
    const origin = Object.fromEntries(summary!.bySource.map((s) => [s.name, s.share]));
    // the program's own code by its source file (not the bundle), the library by its
    // package (the JIT inlines much of zod into the caller: its share stays small)
    expect(origin['burn.ts']).toBeGreaterThan(0.3);
    expect(origin.zod).toBeGreaterThan(0);
    expect(summary!.byFunction.some((f) => / zod\/v4\/.+\.js:\d+$/.test(f.name))).toBe(true);
    // only frames without a mapping (the module's top level) stay the bundle's
    expect(origin['dist/burn.mjs'] ?? 0).toBeLessThan(0.15);
    const spin = summary!.byFunction.find((f) => f.name.startsWith('spin '));
    expect(spin?.name).toBe('spin burn.ts:10');
    expect(spin!.share).toBeGreaterThan(0.3);
    const shares = summary!.bySource.map((s) => s.share);
    expect(shares).toEqual([...shares].sort((a, b) => b - a));
    expect(shares.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1.0001);
  });

  it('renders a line per process and a table per process', () => {
    const summaries = summarizeProfiles(profiles, { root: dir, top: 3 });
    // functions are cut at `top`; origins are all kept (they sum to the busy time)
    expect(summaries[0]!.byFunction).toHaveLength(3);
    expect(summaries[0]!.bySource.reduce((t, s) => t + s.ms, 0)).toBeCloseTo(
      summaries[0]!.busyMs,
      6,
    );
    const [line] = profileLines(summaries);
    expect(line).toMatch(/^CPU profile burn \(main thread, 2 processes\): \d+ ms busy; /);
    expect(line).toContain('burn.ts ');
    const md = profileMarkdown(summaries, 'profiles').join('\n');
    expect(md).toContain('### burn, main thread');
    expect(md).toContain('`spin burn.ts:10`');
  });

  it('names a file it cannot read and summarizes the others', () => {
    const other = join(dir, 'with-a-torn-file');
    cpSync(join(profiles, 'burn-block1'), join(other, 'burn-block1'), { recursive: true });
    mkdirSync(join(other, 'burn-block2'));
    const torn = join('burn-block2', 'CPU.20261203.190000.1.0.001.cpuprofile');
    writeFileSync(join(other, torn), '{"nodes":[');
    const unreadable: string[] = [];
    const summaries = summarizeProfiles(other, {
      root: dir,
      onUnreadable: (file) => unreadable.push(file),
    });
    expect(unreadable).toEqual([torn]);
    expect(summaries.map((s) => [s.process, s.files])).toEqual([['burn', 1]]);
  });

  it('has nothing to say without profiles', () => {
    expect(summarizeProfiles(join(dir, 'none'))).toEqual([]);
    expect(profileMarkdown([], 'profiles')).toEqual([]);
  });
});

describe('two processes side by side, origin by origin', () => {
  const summary = (process: string, shares: Record<string, number>): ProfileSummary => ({
    process,
    thread: 0,
    files: 1,
    busyMs: 1000,
    bySource: Object.entries(shares).map(([name, share]) => ({ name, share, ms: share * 1000 })),
    byFunction: [],
  });
  const comparison = compareProfiles(
    'traces over none',
    { summary: summary('off', { hono: 0.5, writev: 0.5 }), cpuPerRequestUs: 100 },
    {
      summary: summary('on', { hono: 0.4, writev: 0.4, '@opentelemetry/sdk-trace': 0.2 }),
      cpuPerRequestUs: 150,
    },
  );

  it("applies each profile's shares to its process's CPU per request", () => {
    expect(comparison.byOrigin).toEqual([
      { name: '@opentelemetry/sdk-trace', baseUs: 0, otherUs: 30, differenceUs: 30 },
      { name: 'hono', baseUs: 50, otherUs: 60, differenceUs: 10 },
      { name: 'writev', baseUs: 50, otherUs: 60, differenceUs: 10 },
    ]);
  });

  it('says it in a line and a table', () => {
    expect(comparisonLines([comparison], 2)).toEqual([
      'CPU profiles, traces over none: +50.0 µs per request; @opentelemetry/sdk-trace +30.0, hono +10.0',
    ]);
    const md = comparisonMarkdown([comparison]).join('\n');
    expect(md).toContain('### traces over none: +50.0 µs of CPU per request (off 100.0, on 150.0)');
    expect(md).toContain('| `@opentelemetry/sdk-trace` | 0.0 | 30.0 | +30.0 |');
  });
});
