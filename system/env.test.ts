import { describe, expect, it } from 'vitest';
import { describeEnv, EnvError, loadEnv, maskUrl } from './env.ts';

describe('loadEnv', () => {
  it('applies documented defaults', () => {
    const env = loadEnv({});
    expect(env).toMatchObject({
      HOST: '127.0.0.1',
      PORT: 8787,
      DATABASE_URL: 'file:.data/dev.db',
      AUTH_TOKEN_CACHE: true,
      CLERK_AUTHORIZED_PARTIES: ['http://localhost:5173'],
    });
  });

  it('parses flags and lists', () => {
    const env = loadEnv({
      AUTH_TOKEN_CACHE: 'off',
      CORS_ORIGINS: 'https://a.test, https://b.test',
    });
    expect(env.AUTH_TOKEN_CACHE).toBe(false);
    expect(env.CORS_ORIGINS).toEqual(['https://a.test', 'https://b.test']);
  });

  it('names every bad variable and its value', () => {
    expect(() => loadEnv({ PORT: 'eighty', AUTH_TOKEN_CACHE: 'maybe' })).toThrow(EnvError);
    try {
      loadEnv({ PORT: 'eighty', AUTH_TOKEN_CACHE: 'maybe' });
    } catch (error) {
      expect((error as Error).message).toContain('PORT="eighty"');
      expect((error as Error).message).toContain('AUTH_TOKEN_CACHE="maybe"');
    }
  });

  it('requires the Clerk key in production', () => {
    expect(() => loadEnv({ NODE_ENV: 'production' })).toThrow(/CLERK_JWT_KEY/);
  });

  it('refuses the gate-calibration knob in production, allows it elsewhere', () => {
    expect(() =>
      loadEnv({ NODE_ENV: 'production', CLERK_JWT_KEY: 'k', CALIBRATION_EXTRA_MS: '0.5' }),
    ).toThrow(/CALIBRATION_EXTRA_MS=0.5 .*refused when NODE_ENV=production/);
    expect(loadEnv({ NODE_ENV: 'production', CLERK_JWT_KEY: 'k' }).CALIBRATION_EXTRA_MS).toBe(0);
    expect(loadEnv({ CALIBRATION_EXTRA_MS: '0.5' }).CALIBRATION_EXTRA_MS).toBe(0.5);
    expect(() => loadEnv({ CALIBRATION_EXTRA_MS: '-1' })).toThrow(/CALIBRATION_EXTRA_MS="-1"/);
  });

  it('resolves the lever preset, recommended by default', () => {
    expect(loadEnv({}).DATAFLOW_LEVERS.preset).toBe('recommended');
    const env = loadEnv({ DATAFLOW_PRESET: 'baseline', DATAFLOW_BATCH_ENABLED: 'on' });
    expect(env.DATAFLOW_LEVERS.batch.enabled).toBe(true);
    expect(env.DATAFLOW_LEVERS.cache.enabled).toBe(false);
  });

  it('refuses an unknown DATAFLOW_ variable by name (a typo must not run the default)', () => {
    expect(() => loadEnv({ DATAFLOW_BATCH_MAX_SIZE: '10' })).toThrow(
      /unknown variable DATAFLOW_BATCH_MAX_SIZE/,
    );
    expect(() => loadEnv({ DATAFLOW_PRESET: 'turbo' })).toThrow(/unknown preset "turbo"/);
    expect(() => loadEnv({ DATAFLOW_CACHE_TTL: '-5' })).toThrow(
      /cache.ttl must be a positive number of milliseconds; received -5/,
    );
  });

  it('reads a JSON lever file; env variables win over it; unknown keys are refused', () => {
    const files: Record<string, string> = {
      'good.json': JSON.stringify({
        preset: 'cache-memory',
        cache: { ttl: 5000, invalidation: 'group' },
      }),
      'typo.json': JSON.stringify({ cache: { tll: 5000 } }),
      'bad.json': '{ nope',
    };
    const readFile = (path: string) => files[path] ?? '';
    const good = loadEnv(
      { DATAFLOW_CONFIG: 'good.json', DATAFLOW_CACHE_TTL: '7000' },
      { readFile },
    );
    expect(good.DATAFLOW_LEVERS.preset).toBe('cache-memory');
    expect(good.DATAFLOW_LEVERS.cache).toMatchObject({ ttl: 7000, invalidation: 'group' });
    expect(() => loadEnv({ DATAFLOW_CONFIG: 'typo.json' }, { readFile })).toThrow(
      /typo.json: cache: Unrecognized key.*tll/,
    );
    expect(() => loadEnv({ DATAFLOW_CONFIG: 'bad.json' }, { readFile })).toThrow(
      /DATAFLOW_CONFIG=bad.json/,
    );
  });

  it('masks secrets when the config is printed', () => {
    const env = loadEnv({
      DATABASE_URL: 'libsql://db.example.turso.io?authToken=s3cr3t',
      DATABASE_AUTH_TOKEN: 'tok_s3cr3t',
    });
    const printed = JSON.stringify(describeEnv(env));
    expect(printed).not.toContain('s3cr3t');
    expect(maskUrl('http://user:pw@host:8080/x')).toBe('http://***:***@host:8080/x');
    expect(maskUrl('file:.data/dev.db')).toBe('file:.data/dev.db');
  });
});
