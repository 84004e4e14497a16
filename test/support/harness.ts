import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  generateDevKeyPair,
  generateWebhookSecret,
  type KeyPairPem,
} from '../../fixtures/auth/keys.ts';
import { DEV_AZP, mintSessionToken, type SessionTokenOptions } from '../../fixtures/auth/token.ts';
import { type Fixture, generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { type AppOptions, createApp } from '../../system/api/app.ts';
import { createSessionVerifier } from '../../system/auth/verifier.ts';
import { openDatabase } from '../../system/db/client.ts';
import type { Database } from '../../system/db/database.ts';
import { runMigrations } from '../../system/db/migrate.ts';
import { createLevers, type LeverDeps } from '../../system/levers/levers.ts';
import { type LeversConfig, resolveLevers } from '../../system/levers/presets.ts';
import { createWebhookIntake } from '../../system/sync/intake.ts';
import { createWebhookVerifier } from '../../system/sync/verify.ts';

/** The three database backends every integration suite runs against. */
export const BACKENDS = ['memory', 'file', 'sqld'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface OpenedBackend {
  database: Database;
  url: string;
  close(): Promise<void>;
}

/** A migrated, empty database of the given kind; `sqld` starts a real server. */
export async function openBackend(kind: Backend): Promise<OpenedBackend> {
  let url: string;
  let dir: string | undefined;
  let sqld: SqldServer | undefined;
  if (kind === 'memory') url = ':memory:';
  else if (kind === 'file') {
    dir = mkdtempSync(join(tmpdir(), 'dataflow-db-'));
    url = `file:${join(dir, 'test.db')}`;
  } else {
    sqld = await startSqld();
    url = sqld.url;
  }
  const database = await openDatabase({ url });
  await runMigrations(database.db);
  return {
    database,
    url,
    async close() {
      await database.close();
      await sqld?.stop();
      // the WAL checkpointer's worker closes its connection after close() returns, removing
      // the -wal/-shm files as it does: retry while it finishes (ENOTEMPTY otherwise)
      if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 25 });
    },
  };
}

let sharedKeys: KeyPairPem | undefined;
/** One RSA key pair per test worker: generating one costs tens of milliseconds. */
export function testKeys(): KeyPairPem {
  sharedKeys ??= generateDevKeyPair();
  return sharedKeys;
}

export interface TestContext extends OpenedBackend {
  app: ReturnType<typeof createApp>;
  /** The Svix signing secret the app's webhook route accepts. */
  webhookSecret: string;
  /** How many times the app signalled a commit to the publisher. */
  commits(): number;
  fixture: Fixture;
  keys: KeyPairPem;
  token(options: Omit<SessionTokenOptions, 'privateKeyPem'>): Promise<string>;
  /** `app.request` with a bearer token and JSON body handled. */
  call(
    path: string,
    init?: { token?: string; method?: string; json?: unknown; headers?: Record<string, string> },
  ): Promise<Response>;
}

/** The real app over a real database of `kind`, seeded with the small fixture. */
export async function startTestApp(
  kind: Backend,
  options: Partial<Omit<AppOptions, 'database' | 'sessions'>> = {},
): Promise<TestContext> {
  const backend = await openBackend(kind);
  const fixture = generateFixture('small');
  await loadFixture(backend.database, fixture);
  const keys = testKeys();
  const webhookSecret = generateWebhookSecret();
  let commits = 0;
  const onCommitted =
    options.onCommitted ??
    (() => {
      commits += 1;
    });
  const app = createApp({
    database: backend.database,
    sessions: createSessionVerifier({ jwtKey: keys.publicKey, authorizedParties: [DEV_AZP] }),
    webhooks: {
      intake: createWebhookIntake({
        database: backend.database,
        verify: createWebhookVerifier([webhookSecret]),
        onCommitted,
      }),
      bodyLimitBytes: 256 * 1024,
    },
    onCommitted,
    ...options,
  });
  return {
    ...backend,
    app,
    webhookSecret,
    commits: () => commits,
    fixture,
    keys,
    token: (opts) => mintSessionToken({ privateKeyPem: keys.privateKey, ...opts }),
    call: caller((path, init) => Promise.resolve(app.request(path, init))),
  };
}

/** `TestContext.call` over any way of sending a request (in process, or over HTTP). */
export function caller(
  send: (path: string, init: RequestInit) => Promise<Response>,
): TestContext['call'] {
  return (path, init = {}) => {
    const headers: Record<string, string> = { ...init.headers };
    if (init.token) headers.authorization = `Bearer ${init.token}`;
    let body: string | undefined;
    if (init.json !== undefined) {
      headers['content-type'] ??= 'application/json';
      body = JSON.stringify(init.json);
    }
    return send(path, { method: init.method ?? 'GET', headers, body });
  };
}

/** App options that switch on a preset's levers (with overrides), as the server would. */
export function withLevers(
  preset: string,
  overrides: Partial<LeversConfig> = {},
  deps: LeverDeps = {},
): Pick<AppOptions, 'levers'> {
  return { levers: createLevers(resolveLevers(preset, overrides), deps) };
}
