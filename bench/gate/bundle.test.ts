import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WORKER_BUNDLE_GZIP_MAX_BYTES } from '../budgets.ts';
import { workerBundleGzipBytes, workerBundleRow } from './bundle.ts';
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
