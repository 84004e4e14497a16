import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { capacityOptionsFromEnv, runCapacity, writeCapacity } from '../bench/capacity/run.ts';
import { benchOptionsFromEnv } from '../bench/config.ts';
import { writeResults } from '../bench/results.ts';
import { runBench } from '../bench/run.ts';
import { ensureDevKeys, ensureDevWebhookSecret } from '../fixtures/auth/keys.ts';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { userEvent } from '../fixtures/clerk/events.ts';
import { generateFixture, largestOrg } from '../fixtures/seed/generate.ts';
import { loadFixture } from '../fixtures/seed/load.ts';
import { startPrometheus } from '../load/infra/prometheus.ts';
import { startAppProcess } from '../load/infra/server-process.ts';
import { signedHeaders } from '../load/webhook-sender.ts';
import { openDatabase } from '../system/db/client.ts';
import { runMigrations } from '../system/db/migrate.ts';
import { DEV_KEYS_DIR } from '../system/env.ts';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL } from '../system/realtime/protocol.ts';
import { allDashboards } from './definitions.ts';

/**
 * `make dashboards-verify`: the dashboards proven against the real thing. A real
 * Prometheus (Debian) scrapes the app (production mode, `recommended` levers) every
 * second while a short load exercises every stage: reads (cache misses and hits,
 * coalesced bursts, batched loads), writes (invalidation), signed webhooks (apply, lag),
 * a WebSocket client (fan-out); a smoke bench run is backfilled into it (bench history). Then every query of every panel of every dashboard is
 * evaluated through Prometheus's HTTP API with `$__rate_interval` substituted; any that
 * errors or returns no series fails, named by dashboard, panel and query.
 */
const SCRAPE_SEC = 1;
/** What Grafana would put for `$__rate_interval` at this scrape interval (4 scrapes and more). */
const RATE_INTERVAL = '15s';

export interface Failure {
  dashboard: string;
  panel: string;
  expr: string;
  problem: string;
}

type Dashboards = ReturnType<typeof allDashboards>;

export async function verifyDashboards(
  progress: (line: string) => void = () => {},
  /** What to verify (the tests add a broken one to prove a failure is caught). */
  dashboards: Record<string, Dashboards[keyof Dashboards]> = allDashboards(),
): Promise<{ queries: number; failures: Failure[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'dashboards-verify-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    progress('seeding a database with the small fixture');
    const fixture = generateFixture('small');
    const dbFile = join(dir, 'app.db');
    const database = await openDatabase({ url: `file:${dbFile}` });
    await runMigrations(database.db);
    await loadFixture(database, fixture);
    await database.close();
    const keys = ensureDevKeys(DEV_KEYS_DIR);
    const { secret } = ensureDevWebhookSecret(DEV_KEYS_DIR);
    const app = await startAppProcess({
      NODE_ENV: 'production',
      CLERK_JWT_KEY: keys.publicKey,
      CLERK_WEBHOOK_SIGNING_SECRET: secret,
      DATABASE_URL: `file:${dbFile}`,
      DATAFLOW_PRESET: 'recommended',
      DB_MIGRATE_ON_START: 'false',
    });
    stops.push(() => app.stop());
    const benchResults = join(dir, 'results');
    // a small real capacity run (8 short levels) for the capacity dashboard, first: its
    // fit needs each level's step clean, on a machine not busy ending another run
    const capacity = await capacityWithFit(progress, benchResults);
    const capacityDir = await writeCapacity(capacity);
    // and a real (tiny) bench run, backfilled as a CI job would: the bench-history panels;
    // zipf for the lever findings, overhead for the estimates that carry an interval
    progress('a smoke bench run (zipf, overhead) for the bench-history dashboard');
    const run = await runBench(
      benchOptionsFromEnv({
        PROFILE: 'smoke',
        SUITE: 'zipf,overhead',
        PRESET: 'cache-memory',
        RESULTS_DIR: benchResults,
      }),
    );
    const runDir = writeResults(run);
    const prometheus = await startPrometheus([new URL(app.url).host], SCRAPE_SEC, [
      join(runDir, 'bench.om'),
      join(capacityDir, 'capacity.om'),
    ]);
    stops.push(() => prometheus.stop());

    const { org, admin } = largestOrg(fixture);
    const token = await mintSessionToken({
      privateKeyPem: keys.privateKey,
      userId: admin.id,
      orgId: org.id,
      role: 'admin',
    });
    const auth = { authorization: `Bearer ${token}` };
    const socket = new WebSocket(`${app.url.replace('http', 'ws')}/ws`, [
      PROTOCOL,
      `${BEARER_PROTOCOL_PREFIX}${token}`,
    ]);
    await new Promise((resolve, reject) => {
      socket.once('message', resolve);
      socket.once('error', reject);
    });
    stops.push(async () => socket.close());

    progress('load: reads, bursts, writes, webhooks, a socket (8 s)');
    const members = fixture.memberships.filter((m) => m.orgId === org.id);
    const users = new Map(fixture.users.map((u) => [u.id, u]));
    const started = Date.now();
    for (let i = 0; Date.now() - started < 8000; i++) {
      const get = (path: string) =>
        fetch(`${app.url}${path}`, { headers: auth }).then((r) => r.arrayBuffer());
      // identical reads at once (coalescing), then again (cache hits)
      await Promise.all(
        Array.from({ length: 4 }, () => get(`/api/orgs/${org.id}/members?limit=50`)),
      );
      await get(`/api/orgs/${org.id}/projects`);
      await get('/api/me');
      await fetch(`${app.url}/api/orgs/${org.id}/projects`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name: `verify ${i}` }),
      }).then((r) => r.arrayBuffer());
      const user = users.get(members[i % members.length]!.userId)!;
      const now = Date.now();
      const body = JSON.stringify(userEvent('user.updated', { ...user, updatedAt: now }, now));
      await fetch(`${app.url}/webhooks/clerk`, {
        method: 'POST',
        headers: signedHeaders(secret, `msg_verify_${started}_${i}`, body),
        body,
      }).then((r) => r.arrayBuffer());
      await new Promise((r) => setTimeout(r, 50));
    }
    // two more scrapes, so the last increases are in Prometheus
    await new Promise((r) => setTimeout(r, 2500 * SCRAPE_SEC));

    progress('evaluating every panel query');
    const failures: Failure[] = [];
    let queries = 0;
    for (const [name, dashboard] of Object.entries(dashboards)) {
      for (const raw of dashboard.panels ?? []) {
        const panel = raw as { type?: string; title?: string; targets?: Array<{ expr?: string }> };
        if (panel.type === 'row') continue;
        for (const target of panel.targets ?? []) {
          const expr = (target.expr ?? '').replaceAll('$__rate_interval', RATE_INTERVAL);
          queries += 1;
          const problem = await evaluate(prometheus.url, expr);
          if (problem) {
            failures.push({ dashboard: name, panel: panel.title ?? '?', expr, problem });
          }
        }
      }
    }
    return { queries, failures };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Capacity runs the dashboard's fit may take: a run is short, and a busy host can spoil one. */
const CAPACITY_ATTEMPTS = 3;

/**
 * A short capacity run whose fit exists. The fit leaves out each step the host spoiled
 * (the load generator at a whole core, Little's law not holding), and with more than two
 * of eight left out there is none: the dashboard's queries would then find no series for
 * a reason that is the host's, not the dashboard's. So a run without a fit is run again,
 * a bounded number of times, and the last one's reason is the error.
 */
async function capacityWithFit(progress: (line: string) => void, resultsDir: string) {
  let reason = '';
  for (let attempt = 1; attempt <= CAPACITY_ATTEMPTS; attempt++) {
    progress(
      `a short capacity run (recommended, 8 levels) for the capacity dashboard${attempt > 1 ? `, attempt ${attempt} of ${CAPACITY_ATTEMPTS}` : ''}`,
    );
    const capacity = await runCapacity(
      capacityOptionsFromEnv({
        PRESET: 'recommended',
        LEVELS: '1,2,3,4,5,6,7,8',
        STEP_SEC: '0.5',
        RESULTS_DIR: resultsDir,
      }),
    );
    const preset = capacity.presets[0]!;
    if (preset.fit) return capacity;
    const spoiled = preset.steps.filter((s) => s.flagged).map((s) => `n=${s.n}: ${s.flagged}`);
    reason = `${preset.fitError}${spoiled.length ? ` (left out: ${spoiled.join('; ')})` : ''}`;
    progress(`the capacity run gave no fit: ${reason}`);
  }
  throw new Error(`${CAPACITY_ATTEMPTS} capacity runs gave no fit; the last: ${reason}`);
}

/** null when the query ran and returned at least one series; else what went wrong. */
async function evaluate(prometheusUrl: string, expr: string): Promise<string | null> {
  const res = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as {
    status: string;
    error?: string;
    data?: { result?: unknown[] };
  };
  if (body.status !== 'success') return `error: ${body.error ?? res.status}`;
  if ((body.data?.result?.length ?? 0) === 0) return 'no series';
  return null;
}

async function main(): Promise<number> {
  const { queries, failures } = await verifyDashboards((line) => console.error(line));
  for (const f of failures) {
    console.error(`FAIL ${f.dashboard} / ${f.panel}: ${f.problem}\n     ${f.expr}`);
  }
  console.log(
    failures.length === 0
      ? `dashboards verified: ${queries} queries, every one returns series`
      : `${failures.length} of ${queries} queries failed`,
  );
  return failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
