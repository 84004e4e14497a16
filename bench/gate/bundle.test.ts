import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILD_METRICS, WORKER_BUNDLE_GZIP_MAX_BYTES, WORKER_STARTUP_MAX_MS } from '../budgets.ts';
import {
  BUILD_CHECKS,
  startupMs,
  workerBundleGzipBytes,
  workerBundleRow,
  workerStartupMs,
  workerStartupRow,
} from './bundle.ts';
import { gateOptionsFromEnv } from './options.ts';

describe('the gate: the Worker bundle size', () => {
  it('measures the bundle wrangler builds, offline, and it is under the ceiling', () => {
    const bytes = workerBundleGzipBytes(process.cwd());
    expect(bytes).toBeGreaterThan(10_000);
    expect(bytes).toBeLessThanOrEqual(WORKER_BUNDLE_GZIP_MAX_BYTES);
    expect(workerBundleRow(bytes, undefined).verdict).toBe('pass');
  }, 60_000);

  it('fails over the ceiling, exactly, and skips a checkout without wrangler.toml', () => {
    const over = workerBundleRow(WORKER_BUNDLE_GZIP_MAX_BYTES + 1, WORKER_BUNDLE_GZIP_MAX_BYTES);
    expect(over).toMatchObject({ verdict: 'regression', ratio: 1 });
    expect(over.note).toMatch(/exceeded/);
    expect(workerBundleRow(WORKER_BUNDLE_GZIP_MAX_BYTES, null).verdict).toBe('pass');
    const empty = mkdtempSync(join(tmpdir(), 'no-worker-'));
    try {
      expect(workerBundleGzipBytes(empty)).toBeNull();
      expect(workerBundleRow(null, null)).toMatchObject({
        verdict: 'skipped',
        note: 'no wrangler.toml',
      });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('is checked by default', () => {
    expect(gateOptionsFromEnv({}).metrics).toContain('worker_bundle_gzip');
  });
});

describe("the gate: the Worker's startup", () => {
  it('profiles the startup wrangler runs in a local workerd, offline, and it is under the ceiling', () => {
    const ms = workerStartupMs(process.cwd());
    // parsing a 400 KB bundle and running its global scope takes some milliseconds
    expect(ms).toBeGreaterThan(5);
    expect(ms).toBeLessThanOrEqual(WORKER_STARTUP_MAX_MS);
    expect(workerStartupRow(ms, undefined)).toMatchObject({
      entry: 'worker/startup',
      unit: 'ms',
      verdict: 'pass',
    });
  }, 60_000);

  it("counts a profile's busy samples, not its idle ones", () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(idle)' } },
        { id: 2, callFrame: { functionName: '(program)' } },
        { id: 3, callFrame: { functionName: '__init' } },
      ],
      samples: [1, 2, 3, 3, 1],
      timeDeltas: [40_000, 1_000, 1_100, 900, 5_000],
    };
    expect(startupMs(profile)).toBe(3);
  });

  it('fails over the ceiling, names it, and skips a checkout without wrangler.toml', () => {
    const over = workerStartupRow(WORKER_STARTUP_MAX_MS + 1, 80);
    expect(over).toMatchObject({ verdict: 'regression', base: 80 });
    expect(over.note).toBe(`ceiling ${WORKER_STARTUP_MAX_MS} ms exceeded`);
    expect(workerStartupRow(null, null)).toMatchObject({ verdict: 'skipped' });
  });

  it('is checked by default, and every build metric has its check', () => {
    expect(gateOptionsFromEnv({}).metrics).toContain('worker_startup_ms');
    expect(BUILD_CHECKS.map((check) => check.metric)).toEqual([...BUILD_METRICS]);
  });
});
