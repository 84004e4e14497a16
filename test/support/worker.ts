import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateWebhookSecret } from '../../fixtures/auth/keys.ts';
import { DEV_AZP, mintSessionToken } from '../../fixtures/auth/token.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { type LocalWorker, startLocalWorker } from '../../load/infra/miniflare.ts';
import { buildWorker } from '../../scripts/build.ts';
import type { App } from '../../system/api/app.ts';
import { caller, openBackend, type TestContext, testKeys } from './harness.ts';

let bundle: Promise<string> | undefined;

/**
 * The API contract's fourth target: the Worker (`system/worker.ts`) in miniflare, the real
 * workerd runtime, over a real sqld seeded with the small fixture, `baseline` preset (the
 * test apps of `startTestApp` run without levers). Between the Worker and sqld sits a
 * counting HTTP proxy: every request to sqld is one round trip, so `database.stats()`
 * reports the Worker's round trips as the in-process database reports the Node app's.
 * Each commit signal makes the org object of every org it touched read that org's new
 * rows: those reads stand for `commits()`. `changeLogReads()` counts the isolate's own
 * reads of the whole log (a drain, when the rows it appended do not follow its position).
 * `database` itself is the test's own connection to the same sqld (direct, not counted).
 */
export async function startWorkerTestApp(
  options: { preset?: string; env?: Record<string, string>; isolates?: number } = {},
): Promise<TestContext & { worker: LocalWorker; changeLogReads(): number }> {
  bundle ??= buildWorker('dist/test-worker.mjs');
  const backend = await openBackend('sqld');
  const fixture = generateFixture('small');
  await loadFixture(backend.database, fixture);
  const proxy = await countingProxy(new URL(backend.url));
  const keys = testKeys();
  const webhookSecret = generateWebhookSecret();
  const worker = await startLocalWorker({
    scriptPath: await bundle,
    bindings: {
      NODE_ENV: 'production',
      DATABASE_URL: proxy.url,
      CLERK_JWT_KEY: keys.publicKey,
      CLERK_AUTHORIZED_PARTIES: DEV_AZP,
      CLERK_WEBHOOK_SIGNING_SECRET: webhookSecret,
      DATAFLOW_PRESET: options.preset ?? 'baseline',
      ...options.env,
    },
    isolates: options.isolates,
  });
  const origin = worker.url;
  const request = (path: string, init: RequestInit = {}) => {
    if (!(init.body instanceof ReadableStream)) return fetch(origin + path, init);
    // a streamed body: Node's fetch sends it chunked itself (half duplex), and refuses
    // the header set by hand
    const headers = new Headers(init.headers);
    headers.delete('transfer-encoding');
    return fetch(origin + path, { ...init, headers, duplex: 'half' } as RequestInit);
  };
  return {
    ...backend,
    database: {
      ...backend.database,
      stats: () => ({ ...backend.database.stats(), roundTrips: proxy.count() }),
    },
    // only `request` is used through it: the same call, over HTTP to workerd
    app: { request } as unknown as App,
    webhookSecret,
    commits: () => proxy.orgReads(),
    changeLogReads: () => proxy.changeLogReads(),
    fixture,
    keys,
    token: (opts) => mintSessionToken({ privateKeyPem: keys.privateKey, ...opts }),
    call: caller(request),
    worker,
    async close() {
      await worker.dispose();
      await new Promise<void>((resolve) => proxy.server.close(() => resolve()));
      await backend.close();
    },
  };
}

/**
 * The isolate's drain (`changesAfter`) and an org object's read (`orgChangesAfter`, in
 * system/db/queries/changes.ts) as drizzle writes them, inside hrana's JSON body (so the
 * quotes arrive escaped).
 */
const CHANGE_LOG_READ = /from \\"change_log\\" where \\"change_log\\"\.\\"id\\" > \?/i;
const ORG_READ =
  /from \\"change_log\\" where \(\\"change_log\\"\.\\"org_id\\" = \? and \\"change_log\\"\.\\"id\\" > \?\)/i;

/** Forwards every HTTP request to `target`, counting them and the publisher's reads. */
async function countingProxy(target: URL): Promise<{
  url: string;
  count(): number;
  changeLogReads(): number;
  orgReads(): number;
  server: Server;
}> {
  let count = 0;
  let changeLogReads = 0;
  let orgReads = 0;
  const server = createServer((incoming, outgoing) => {
    count += 1;
    incoming.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (CHANGE_LOG_READ.test(text)) changeLogReads += 1;
      if (ORG_READ.test(text)) orgReads += 1;
    });
    const upstream = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method: incoming.method,
        path: incoming.url,
        headers: incoming.headers,
      },
      (response) => {
        outgoing.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(outgoing);
      },
    );
    upstream.on('error', () => outgoing.destroy());
    incoming.pipe(upstream);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    count: () => count,
    changeLogReads: () => changeLogReads,
    orgReads: () => orgReads,
    server,
  };
}
