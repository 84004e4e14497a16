import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { budgetFor } from '../../bench/budgets.ts';
import { K6_DIR, K6_TSCONFIG, renderAll } from '../../bench/k6-scripts.ts';
import { SCENARIO_NAMES } from '../../load/scenarios.ts';

const run = promisify(execFile);
const tsc = resolve('node_modules/.bin/tsc');

async function typeCheck(project: string): Promise<{ ok: boolean; output: string }> {
  try {
    await run(tsc, ['-p', project], { encoding: 'utf8' });
    return { ok: true, output: '' };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

describe('k6 scripts (make k6)', () => {
  it('are committed and current: one per scenario, same text as `make k6` emits', () => {
    const scripts = renderAll();
    expect([...scripts.keys()].sort()).toEqual(SCENARIO_NAMES.map((n) => `${n}.ts`).sort());
    for (const [file, text] of scripts) {
      const committed = readFileSync(join(K6_DIR, file), 'utf8');
      expect(committed, `${K6_DIR}/${file} is stale: run make k6`).toBe(text);
    }
    expect(readFileSync(join(K6_DIR, 'tsconfig.json'), 'utf8')).toBe(K6_TSCONFIG);
  });

  it('take their thresholds from the budgets file', () => {
    const members = renderAll().get('members.ts')!;
    const { latencyMs, minRps } = budgetFor('members', 'recommended')!.absolute;
    expect(members).toContain(
      `'http_req_duration{scenario:open}': ['p(50)<${latencyMs.p50}', 'p(95)<${latencyMs.p95}', 'p(99)<${latencyMs.p99}']`,
    );
    expect(members).toContain(`'http_reqs{scenario:closed}': ['rate>=${minRps}']`);
    expect(members).toContain("executor: 'constant-arrival-rate'");
    expect(renderAll().get('cold-burst.ts')).toContain(
      "executor: 'per-vu-iterations', vus: 200, iterations: 1",
    );
  });

  it('type-check against @types/k6, and the check catches a wrong call', async () => {
    const good = await typeCheck(join(K6_DIR, 'tsconfig.json'));
    expect(good.output).toBe('');
    expect(good.ok).toBe(true);

    // the same script with one misuse of the k6 API must fail the same check
    mkdirSync('.tmp', { recursive: true });
    const dir = mkdtempSync(join(resolve('.tmp'), 'k6-'));
    try {
      const script = renderAll()
        .get('members.ts')!
        .replace('check(res, {', "check(res.status, 'not a checker map', {");
      writeFileSync(join(dir, 'members.ts'), script);
      const config = JSON.parse(K6_TSCONFIG) as { compilerOptions: Record<string, unknown> };
      config.compilerOptions.typeRoots = [resolve('node_modules/@types')];
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(config));
      const bad = await typeCheck(join(dir, 'tsconfig.json'));
      expect(bad.ok).toBe(false);
      expect(bad.output).toMatch(/members\.ts\(\d+,\d+\): error TS2345: .*Checkers/); // not a checker map
      expect(bad.output).not.toContain('Cannot find module');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
