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
