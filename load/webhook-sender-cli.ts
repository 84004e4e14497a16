import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { buildHistory, planDeliveries } from '../fixtures/clerk/storm.ts';
import { HANDLED_EVENT_TYPES } from '../system/sync/clerk-events.ts';
import { sendDeliveries } from './webhook-sender.ts';

/**
 * The webhook sender: signs Clerk events like Svix and sends them to the app.
 *
 *   npm run webhooks -- storm --url http://127.0.0.1:8787 --count 1000 --seed 1 \
 *     [--copies 3 | --duplicates 0.3] [--reorder 0.2] [--stale 0.05] \
 *     [--bad-signatures 0.01] [--malformed 0.01] [--concurrency 16] [--rate 200] [--json]
 *   npm run webhooks -- send --url http://127.0.0.1:8787 --type user.created [--seed 1]
 *
 * The secret comes from --secret, CLERK_WEBHOOK_SIGNING_SECRET, or .dev-keys/webhook-secret.
 * Targets must be loopback unless --allow-remote. Exit 0 when every answer matched what
 * its delivery deserved, 1 when not, 2 on bad input.
 */
function fail(message: string): never {
  console.error(`webhooks: ${message}`);
  process.exit(2);
}

const [command, ...rest] = process.argv.slice(2);
if (command !== 'storm' && command !== 'send')
  fail(`the first argument must be storm or send, got ${JSON.stringify(command ?? null)}`);

let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    args: rest,
    options: {
      url: { type: 'string' },
      secret: { type: 'string' },
      seed: { type: 'string', default: '1' },
      count: { type: 'string', default: '1000' },
      copies: { type: 'string' },
      duplicates: { type: 'string', default: '0' },
      reorder: { type: 'string', default: '0' },
      stale: { type: 'string', default: '0' },
      'bad-signatures': { type: 'string', default: '0' },
      malformed: { type: 'string', default: '0' },
      concurrency: { type: 'string', default: '16' },
      rate: { type: 'string' },
      type: { type: 'string' },
      'allow-remote': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  }));
} catch (error) {
  fail((error as Error).message);
}

const int = (name: string, min: number): number => {
  const raw = values[name];
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isInteger(n) || n < min)
    fail(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
};
const share = (name: string): number => {
  const raw = values[name];
  const n = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(n) || n < 0 || n > 1)
    fail(`--${name} must be a number between 0 and 1, got ${JSON.stringify(raw)}`);
  return n;
};

const url = values.url;
if (typeof url !== 'string') fail('--url is required (e.g. http://127.0.0.1:8787)');
try {
  new URL(url);
} catch {
  fail(`--url is not a URL: ${JSON.stringify(url)}`);
}
const secret =
  (values.secret as string | undefined) ??
  process.env.CLERK_WEBHOOK_SIGNING_SECRET?.split(/[\s,]+/)[0] ??
  (existsSync('.dev-keys/webhook-secret')
    ? readFileSync('.dev-keys/webhook-secret', 'utf8').trim()
    : undefined);
if (!secret)
  fail('no signing secret: pass --secret, set CLERK_WEBHOOK_SIGNING_SECRET, or run make setup');

const seed = int('seed', 0);
let history = buildHistory({ seed, count: command === 'send' ? 1 : int('count', 1) });
if (command === 'send') {
  const type = values.type;
  if (typeof type !== 'string' || !(HANDLED_EVENT_TYPES as readonly string[]).includes(type)) {
    fail(
      `--type must be one of ${HANDLED_EVENT_TYPES.join(', ')}; got ${JSON.stringify(type ?? null)}`,
    );
  }
  // walk a longer history until the requested type appears
  const longer = buildHistory({ seed, count: 2000 });
  const event = longer.events.find((e) => e.type === type);
  if (!event) fail(`no ${type} event in the first 2000 events of seed ${seed}; try another --seed`);
  history = { ...longer, events: [event] };
}

const plan = planDeliveries(history, {
  seed,
  copies: values.copies === undefined ? undefined : int('copies', 1),
  duplicates: share('duplicates'),
  reorder: share('reorder'),
  stale: share('stale'),
  badSignatures: share('bad-signatures'),
  malformed: share('malformed'),
});

let summary: Awaited<ReturnType<typeof sendDeliveries>>;
try {
  summary = await sendDeliveries(plan, {
    url,
    secret,
    concurrency: int('concurrency', 1),
    ratePerSec: values.rate === undefined ? undefined : int('rate', 1),
    allowRemote: values['allow-remote'] === true,
  });
} catch (error) {
  fail((error as Error).message);
}

const live = <T extends { deletedAt: number | null }>(m: Map<string, T>) =>
  [...m.values()].filter((r) => r.deletedAt === null).length;
const expected = {
  users: { live: live(history.expected.users), total: history.expected.users.size },
  organizations: {
    live: live(history.expected.organizations),
    total: history.expected.organizations.size,
  },
  memberships: {
    live: live(history.expected.memberships),
    total: history.expected.memberships.size,
  },
};
const kinds = plan.reduce<Record<string, number>>((acc, d) => {
  acc[d.kind] = (acc[d.kind] ?? 0) + 1;
  return acc;
}, {});
const latencies = summary.results.map((r) => r.latencyMs).sort((x, y) => x - y);
const pct = (p: number) =>
  latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0;
const report = {
  command,
  seed,
  events: history.events.length,
  deliveries: plan.length,
  sentByKind: kinds,
  byStatus: summary.byStatus,
  byOutcome: summary.byOutcome,
  unexpected: summary.unexpected.length,
  elapsedMs: Math.round(summary.elapsedMs),
  deliveriesPerSecond: Math.round(summary.perSecond),
  latencyMs: {
    p50: +pct(50).toFixed(2),
    p99: +pct(99).toFixed(2),
    max: +(latencies.at(-1) ?? 0).toFixed(2),
  },
  expectedEndState: expected,
};
if (values.json) {
  console.log(JSON.stringify(report, null, 2));
} else {
  console.log(
    `sent ${report.deliveries} deliveries of ${report.events} events (seed ${seed}) in ${report.elapsedMs} ms: ${report.deliveriesPerSecond}/s`,
  );
  console.log(`  by kind:    ${JSON.stringify(kinds)}`);
  console.log(`  by status:  ${JSON.stringify(summary.byStatus)}`);
  console.log(`  by outcome: ${JSON.stringify(summary.byOutcome)}`);
  console.log(
    `  latency ms: p50 ${report.latencyMs.p50}, p99 ${report.latencyMs.p99}, max ${report.latencyMs.max}`,
  );
  console.log(`  expected end state (in-order truth): ${JSON.stringify(expected)}`);
  console.log(
    report.unexpected === 0
      ? '  every answer matched its delivery'
      : `  ${report.unexpected} unexpected answers, e.g. ${JSON.stringify(summary.unexpected.slice(0, 3).map((r) => ({ kind: r.delivery.kind, status: r.status, outcome: r.outcome })))}`,
  );
}
process.exit(report.unexpected === 0 ? 0 : 1);
