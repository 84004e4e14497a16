import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ServerProcess, startServerProcess } from '../../load/infra/server-process.ts';
import { buildServer } from '../../scripts/build.ts';
import { testKeys } from '../support/harness.ts';

// `npm run build`: the bundle the benches start is a complete server on its own.
describe('the production bundle', () => {
  // inside the tree: the bundle resolves its external packages from node_modules
  mkdirSync('dist', { recursive: true });
  const dir = mkdtempSync(join('dist', 'test-build-'));
  let server: ServerProcess | undefined;
  let bundle = '';
  beforeAll(async () => {
    bundle = await buildServer(join(dir, 'dist', 'server.mjs'));
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts on an empty database, migrates it from the migrations beside it, and serves', async () => {
    server = await startServerProcess(
      {
        NODE_ENV: 'production',
        DATABASE_URL: `file:${join(dir, 'empty.db')}`,
        DB_MIGRATE_ON_START: 'true',
        CLERK_JWT_KEY: testKeys().publicKey,
      },
      bundle,
    );
    const ready = await fetch(`${server.url}/ready`);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok' },
    });
    // authenticated routes are mounted: no token is a 401 with the JSON error body
    const api = await fetch(`${server.url}/api/me`);
    expect(api.status).toBe(401);
    expect(await api.json()).toMatchObject({ error: { code: expect.any(String) } });
  }, 60_000);

  it('names only files that exist in its source map: a package whose own map points elsewhere is bundled without it', () => {
    // the bundle links the map beside it (DevTools, --enable-source-maps, the bench's summary)
    expect(readFileSync(bundle, 'utf8').trimEnd().split('\n').at(-1)).toBe(
      '//# sourceMappingURL=server.mjs.map',
    );
    const map = JSON.parse(readFileSync(`${bundle}.map`, 'utf8')) as { sources: string[] };
    const missing = map.sources.filter((source) => !existsSync(resolve(dirname(bundle), source)));
    expect(missing).toEqual([]);
    // drizzle-orm's maps name `../src/*.ts` outside the package: its own files instead
    expect(
      map.sources.some((source) => source.endsWith('node_modules/drizzle-orm/entity.js')),
    ).toBe(true);
  });
});
