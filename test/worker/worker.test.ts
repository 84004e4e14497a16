import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateWebhookSecret } from '../../fixtures/auth/keys.ts';
import { mintSessionToken } from '../../fixtures/auth/token.ts';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import {
  type LocalWorker,
  startLocalWorker,
  WORKER_COMPATIBILITY,
} from '../../load/infra/miniflare.ts';
import { type ServerProcess, startAppProcess } from '../../load/infra/server-process.ts';
import { type SqldServer, startSqld } from '../../load/infra/sqld.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { buildWorker } from '../../scripts/build.ts';
import { openDatabase } from '../../system/db/client.ts';
import { runMigrations } from '../../system/db/migrate.ts';
import { testKeys } from '../support/harness.ts';
import { castFrom } from '../support/people.ts';

// The same app on workerd (miniflare runs the real runtime) and on Node, both on one real
// sqld: same answers, writes and webhooks through the Worker, configuration refused by name.
describe('the API Worker on workerd', () => {
  let sqld: SqldServer;
  let worker: LocalWorker;
  let workerUrl: string;
  let node: ServerProcess;
  let script: string;
  const secret = generateWebhookSecret();
  const fixture = generateFixture('small');
  const cast = castFrom(fixture);
  let auth: Record<string, string>;

  const workerWith = (bindings: Record<string, string>) =>
    startLocalWorker({ scriptPath: script, bindings });

  beforeAll(async () => {
    [sqld, script] = await Promise.all([startSqld(), buildWorker('dist/worker.mjs')]);
    const database = await openDatabase({ url: sqld.url });
    await runMigrations(database.db);
    await loadFixture(database, fixture);
    await database.close();
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: sqld.url,
      CLERK_JWT_KEY: testKeys().publicKey,
      CLERK_WEBHOOK_SIGNING_SECRET: secret,
      DATAFLOW_PRESET: 'batch',
    };
    [worker, node] = await Promise.all([
      workerWith(env),
      startAppProcess({ ...env, DB_MIGRATE_ON_START: 'false' }),
    ]);
    workerUrl = worker.url;
    const token = await mintSessionToken({
      privateKeyPem: testKeys().privateKey,
      userId: cast.adminA.id,
      orgId: cast.orgA.id,
    });
    auth = { authorization: `Bearer ${token}` };
  }, 90_000);

  afterAll(async () => {
    await worker?.dispose();
    await node?.stop();
    await sqld?.stop();
  });

  // the same request id on both sides: error bodies carry it
  const both = async (path: string, init: { headers?: Record<string, string> } = {}) => {
    const headers = { ...init.headers, 'x-request-id': 'worker-vs-node' };
    const [w, n] = await Promise.all([
      fetch(workerUrl + path, { headers }),
      fetch(node.url + path, { headers }),
    ]);
    return {
      worker: { status: w.status, body: await w.json() },
      node: { status: n.status, body: await n.json() },
    };
  };

  it('answers as the Node app does: health, the members page, the caller, a missing token', async () => {
    for (const [path, init] of [
      ['/health', {}],
      [`/api/orgs/${cast.orgA.id}/members?limit=50`, { headers: auth }],
      [`/api/orgs/${cast.orgA.id}`, { headers: auth }],
      ['/api/me', { headers: auth }],
      [`/api/orgs/${cast.orgA.id}/members`, {}],
    ] as const) {
      const { worker: w, node: n } = await both(path, init);
      expect(w, path).toEqual(n);
    }
    const members = await both(`/api/orgs/${cast.orgA.id}/members?limit=50`, { headers: auth });
    expect(members.worker.status).toBe(200);
    expect((members.worker.body as { data: unknown[] }).data.length).toBeGreaterThan(0);
    const anonymous = await both(`/api/orgs/${cast.orgA.id}/members`);
    expect(anonymous.worker.status).toBe(401);
  });

  it('scopes reads to the caller organization: another org is not found, as on Node', async () => {
    const other = await both(`/api/orgs/${cast.orgB.id}/members`, { headers: auth });
    expect(other.worker.status).toBe(404);
    expect(other.worker).toEqual(other.node);
  });

  it('writes through the Worker: a created project is read back on workerd and on Node', async () => {
    const created = await fetch(`${workerUrl}/api/orgs/${cast.orgA.id}/projects`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'made on workerd' }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const read = await both(`/api/orgs/${cast.orgA.id}/projects/${id}`, { headers: auth });
    expect(read.worker.status).toBe(200);
    expect(read.worker).toEqual(read.node);
  });

  it('applies a Svix-signed Clerk webhook once, and refuses a bad signature', async () => {
    const body = JSON.stringify(
      userEvent(
        'user.updated',
        { ...cast.memberA, firstName: 'Workerd', updatedAt: Date.now() },
        Date.now(),
      ),
    );
    const id = `msg_worker_${Date.now()}`;
    const first = await fetch(`${workerUrl}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(secret, id, body),
      body,
    });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { status: string }).status).toBe('applied');
    const again = await fetch(`${workerUrl}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(secret, id, body),
      body,
    });
    expect(((await again.json()) as { status: string }).status).toBe('duplicate');
    const forged = await fetch(`${workerUrl}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(generateWebhookSecret(), `${id}_forged`, body),
      body,
    });
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { error: { code: string } }).error.code).toMatch(/signature/);
    const me = await fetch(`${node.url}/api/users/${cast.memberA.id}`, { headers: auth });
    expect(((await me.json()) as { firstName: string }).firstName).toBe('Workerd');
  });

  it('refuses bad configuration with a 500 naming each variable and binding', async () => {
    const configurationError = async (url: string) => {
      const res = await fetch(`${url}/health`);
      expect(res.status).toBe(500);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe('configuration');
      return error.message;
    };
    const bad = await workerWith({
      NODE_ENV: 'production',
      DATABASE_URL: 'file:local.db',
      DATAFLOW_PRESET: 'cache-redis',
    });
    try {
      const message = await configurationError(bad.url);
      expect(message).toMatch(/CLERK_JWT_KEY/);
    } finally {
      await bad.dispose();
    }
    // a deployment without wrangler.toml's bindings
    const bare = new Miniflare({
      modules: true,
      scriptPath: script,
      ...WORKER_COMPATIBILITY,
      bindings: {
        NODE_ENV: 'production',
        DATABASE_URL: 'file:local.db',
        CLERK_JWT_KEY: testKeys().publicKey,
        DATAFLOW_PRESET: 'cache-redis',
      },
      port: 0,
      cf: false,
    });
    try {
      const message = await configurationError((await bare.ready).origin);
      expect(message).toMatch(/DATABASE_URL must be http/);
      expect(message).toMatch(/ORG_HUB Durable Object binding/);
      expect(message).toMatch(/CACHE_KV/);
    } finally {
      await bare.dispose();
    }
  });
});
