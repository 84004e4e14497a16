import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@libsql/client';
import Libsql from 'libsql';
import { buildHistory, planDeliveries } from '../../fixtures/clerk/storm.ts';
import { ownCpuMs } from '../../load/infra/proc.ts';
import {
  type ServerProcess,
  startAppProcess,
  startBundledProcess,
} from '../../load/infra/server-process.ts';
import { startSqld } from '../../load/infra/sqld.ts';
import { sendDeliveries } from '../../load/webhook-sender.ts';
import { delta, type Samples, scrape, sum } from '../prometheus-text.ts';
import type { Figure, Interval } from '../results.ts';
import { interval2, pairedBootstrapRatio, round2 } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  cpuProfileArgs,
  productionEnv,
  type SuiteContext,
} from './context.ts';

/**
 * A webhook storm: signed Clerk events with the network's habits (10% duplicates, 20%
 * reordered), 32 concurrent deliveries into a fresh app process, per preset (baseline,
 * recommended) on an embedded database and, for `recommended`, into a real sqld, over
 * each of the driver's transports (HTTP, and one WebSocket). Every
 * valid delivery must be applied or deduplicated; the server's own apply time and lag
 * come from `/metrics`. Each ingest rate stands next to its anchors measured in the same
 * run: one write transaction of two inserts per event through the raw driver on the
 * same storage, back to back (the physical limit of one commit per event), and the same
 * signed deliveries from the same generator into a bare `node:http` server that answers
 * without reading them (the HTTP ceiling: what the generator, the loopback and Node's
 * HTTP stack allow on this machine before the app does any work). On the embedded
 * database the anchors and the presets run in interleaved rounds (`embeddedStorms`);
 * into sqld, each storm right after its raw anchor on a fresh sqld.
 */
export const webhooksSuite: BenchSuite = {
  description:
    'webhook storm (duplicates, reordering, concurrency 32) into file and sqld: verified events/s next to raw commits/s, lost events, apply time',
  databases: ['file'],
  run: async (ctx) => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-webhooks-'));
    ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const figures = await embeddedStorms(
      ctx,
      dir,
      ctx.options.presets.filter((p) => p === 'baseline' || p === 'recommended'),
    );
    if (ctx.options.presets.includes('recommended')) {
      const ceiling = figures.find((f) => f.metric === CEILING_METRIC)!.value!;
      // the driver's two transports, each into a fresh sqld (the storm's ids are the same,
      // so a second storm into the first would only find duplicates): Hrana over HTTP, a
      // request per batch (what the Worker uses, and `http://` URLs), and over one
      // WebSocket (what `libsql://` and `ws://` URLs use on Node)
      for (const db of ctx.settings.webhookSqldTransports) {
        checkAborted(ctx);
        const sqld = await startSqld();
        ctx.cleanups.push(() => sqld.stop());
        try {
          const url = db === 'sqld' ? sqld.url : sqld.url.replace(/^http/, 'ws');
          ctx.progress(`webhooks: raw write batches against sqld (the anchor), ${DB_LABEL[db]}`);
          const committer = rawClientCommitter(url);
          const raw = await metered({ sqld: sqld.cpuMs }, () =>
            committer.commit(Math.min(ctx.settings.webhookEvents, 1000), 2000),
          ).finally(() => committer.close());
          const rawPerSecond = (raw.count * 1000) / raw.elapsedMs;
          figures.push(anchorFigure(db, rawPerSecond, raw.count));
          // sqld's own cost of one request, the floor a group commit shares among deliveries
          figures.push(
            anchor(
              `sqld CPU per raw write batch (${db})`,
              cpuPerEvent([raw], 'sqld'),
              'us',
              raw.count,
              'CPU sqld spent (/proc) per write batch of its raw anchor, back to back: its own cost of one request',
            ),
          );
          figures.push(
            ...(await storm(
              ctx,
              'recommended',
              { url, db, cpuMs: sqld.cpuMs },
              rawPerSecond,
              ceiling,
            )),
          );
        } finally {
          await sqld.stop();
        }
      }
    }
    return figures;
  },
};

const SCENARIO = 'webhook storm';

type StormDb = 'file' | 'sqld' | 'sqld-ws';

/** How each database is named in notes and progress lines. */
const DB_LABEL: Record<StormDb, string> = {
  file: 'embedded DB',
  sqld: 'sqld',
  'sqld-ws': 'sqld over one WebSocket',
};

/** The storm's deliveries: the network's habits (some duplicates and reordering; all signed, all valid). */
function stormDeliveries(events: number) {
  return planDeliveries(buildHistory({ seed: 7, count: events }), {
    seed: 7,
    duplicates: 0.1,
    reorder: 0.2,
  });
}

const CEILING_METRIC = 'HTTP ceiling: bare node:http req/s';
/** The embedded storm's second raw anchor: the driver the app used for `file:` before `libsql`. */
const CLIENT_ANCHOR_METRIC = 'raw client batches/s (file)';

/** The processes a storm's CPU is counted for. */
type Meter = 'server' | 'sqld' | 'generator';

/** What one side took in one round, how long it took, and the CPU each process spent on it. */
interface Round {
  count: number;
  elapsedMs: number;
  cpuMs: Partial<Record<Meter, number>>;
}

/**
 * Runs one side's share and reads each meter (CPU ms so far) around it: the server's and
 * sqld's from `/proc`, the generator's (this process) from `process.cpuUsage`.
 */
async function metered<T extends Omit<Round, 'cpuMs'>>(
  meters: Partial<Record<Meter, () => number>>,
  run: () => Promise<T> | T,
): Promise<T & Round> {
  const entries = Object.entries(meters) as Array<[Meter, () => number]>;
  const before = entries.map(([, read]) => read());
  const round = await run();
  const cpuMs: Round['cpuMs'] = {};
  entries.forEach(([meter, read], i) => {
    cpuMs[meter] = read() - before[i]!;
  });
  return { ...round, cpuMs };
}

/** CPU µs per event a process spent over the rounds (null when it was not metered). */
function cpuPerEvent(rounds: readonly Round[], meter: Meter): number | null {
  if (rounds.some((r) => r.cpuMs[meter] === undefined)) return null;
  const ms = rounds.reduce((t, r) => t + r.cpuMs[meter]!, 0);
  return Math.round((ms * 1000) / count(rounds));
}

/** What the rounds took, in all, and per second over their summed time. */
const count = (rounds: readonly Round[]) => rounds.reduce((n, r) => n + r.count, 0);
const rateOf = (rounds: readonly Round[]) =>
  (count(rounds) * 1000) / rounds.reduce((t, r) => t + r.elapsedMs, 0);

/**
 * The embedded storm next to its two anchors, in rounds: the raw commits, the HTTP
 * ceiling and each preset's app (a fresh process on a fresh file each) take their share
 * of the deliveries in turn, round after round, every other round in reverse order
 * (ABBA), after one warm-up storm each. A slow stretch of this shared machine then
 * falls on every side alike; the ratios are the median of the rounds' paired ratios,
 * with an interval. Each side still gets the whole storm, in order.
 */
async function embeddedStorms(
  ctx: SuiteContext,
  dir: string,
  presets: readonly string[],
): Promise<Figure[]> {
  const { webhookEvents: events, webhookRounds: rounds } = ctx.settings;
  const deliveries = stormDeliveries(events);
  const size = Math.ceil(deliveries.length / rounds);
  const chunks = Array.from({ length: rounds }, (_, r) =>
    deliveries.slice(r * size, (r + 1) * size),
  );
  // as long as a round (with 500 events, a first full round of the bare server still ran
  // at about half its later rate); another seed: other ids, other entities, so the
  // measured storm finds none of them
  const warmup = planDeliveries(buildHistory({ seed: 11, count: Math.ceil(events / rounds) }), {
    seed: 11,
  });
  const send = (url: string, batch: typeof deliveries) =>
    sendDeliveries(batch, { url, secret: ctx.webhookSecret, concurrency: 32 });

  ctx.progress('webhooks: the raw commits, the HTTP ceiling and the app, in rounds');
  const raw = rawCommitter(join(dir, 'raw.db'));
  ctx.cleanups.push(() => raw.close());
  const rawClient = rawClientCommitter(`file:${join(dir, 'raw-client.db')}`);
  ctx.cleanups.push(() => rawClient.close());
  const bare = await startBundledProcess('load/infra/hello-server.ts', { HELLO: 'node' });
  ctx.cleanups.push(() => bare.stop());
  const apps = new Map<string, ServerProcess>();
  for (const preset of presets) {
    const app = await startAppProcess(
      productionEnv(ctx, {
        DATABASE_URL: `file:${join(dir, `${preset}.db`)}`,
        DB_MIGRATE_ON_START: 'true',
        DATAFLOW_PRESET: preset,
      }),
      cpuProfileArgs(ctx, `webhooks-file-${preset}`),
    );
    ctx.cleanups.push(() => app.stop());
    apps.set(preset, app);
  }
  try {
    const lost = new Map(presets.map((p) => [p, 0]));
    const sides: Array<{ name: string; run(batch: typeof deliveries): Promise<Round> }> = [
      // the raw commits run in this process: its CPU is theirs
      {
        name: 'raw commits',
        run: (batch) => metered({ server: ownCpuMs }, () => raw.commit(batch.length)),
      },
      {
        name: 'raw client batches',
        run: (batch) => metered({ server: ownCpuMs }, () => rawClient.commit(batch.length)),
      },
      {
        name: 'HTTP ceiling',
        run: (batch) =>
          metered({ server: bare.cpuMs, generator: ownCpuMs }, async () => {
            const summary = await send(bare.url, batch);
            return { count: summary.sent, elapsedMs: summary.elapsedMs };
          }),
      },
      ...presets.map((preset) => ({
        name: preset,
        run: (batch: typeof deliveries): Promise<Round> => {
          const app = apps.get(preset)!;
          return metered({ server: app.cpuMs, generator: ownCpuMs }, async () => {
            const summary = await send(app.url, batch);
            const valid = summary.results.filter((r) => r.delivery.kind === 'valid');
            const missed = valid.filter((r) => r.status !== 200).length + summary.unexpected.length;
            lost.set(preset, lost.get(preset)! + missed);
            return { count: valid.length, elapsedMs: summary.elapsedMs };
          });
        },
      })),
    ];
    for (const side of sides) {
      checkAborted(ctx);
      await side.run(warmup);
    }
    const before = new Map<string, Samples>();
    for (const [preset, app] of apps) before.set(preset, await scrape(app.url));
    const measured = new Map<string, Round[]>(sides.map((side) => [side.name, []]));
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? sides : sides.toReversed()) {
        checkAborted(ctx);
        ctx.progress(`webhooks: round ${r + 1}/${rounds}, ${side.name}, embedded DB`);
        measured.get(side.name)!.push(await side.run(chunks[r]!));
      }
    }
    const rawRounds = measured.get('raw commits')!;
    const clientRounds = measured.get('raw client batches')!;
    const ceilingRounds = measured.get('HTTP ceiling')!;
    const inRounds = `${rounds} round${rounds > 1 ? 's' : ''} interleaved with the storms`;
    const figures: Figure[] = [
      anchorFigure('file', rateOf(rawRounds), count(rawRounds), `; ${inRounds}`),
      anchor(
        'raw commits: CPU per commit (file)',
        cpuPerEvent(rawRounds, 'server'),
        'µs',
        count(rawRounds),
        'CPU time of the process committing, over the measured rounds',
      ),
      anchor(
        CLIENT_ANCHOR_METRIC,
        Math.round(rateOf(clientRounds)),
        'commits/s',
        count(clientRounds),
        `one write batch of two inserts per event through @libsql/client, same disk, WAL (the anchor issue 14 was first measured against); ${inRounds}`,
      ),
      anchor(
        'HTTP ceiling: server CPU per request',
        cpuPerEvent(ceilingRounds, 'server'),
        'µs',
        count(ceilingRounds),
        'CPU time of the bare node:http server (/proc), over the measured rounds',
      ),
      anchor(
        CEILING_METRIC,
        Math.round(rateOf(ceilingRounds)),
        'req/s',
        count(ceilingRounds),
        `the same signed deliveries from the same generator (concurrency 32) into a bare node:http server that answers without reading them; ${inRounds}`,
      ),
    ];
    for (const [preset, app] of apps) {
      const appRounds = measured.get(preset)!;
      const after = await scrape(app.url);
      const versus = (anchor: Round[], what: string) =>
        pairedFigure(anchor, appRounds, `${what}, the same rounds`);
      figures.push(
        ...ingestFigures({
          preset,
          db: 'file',
          perSecond: rateOf(appRounds),
          samples: count(appRounds),
          vsRaw: versus(
            rawRounds,
            `raw: ${Math.round(rateOf(rawRounds))} commits/s on the same storage`,
          ),
          vsCeiling: versus(
            ceilingRounds,
            `bare node:http: ${Math.round(rateOf(ceilingRounds))} req/s for the same deliveries`,
          ),
          vsClient: versus(
            clientRounds,
            `@libsql/client: ${Math.round(rateOf(clientRounds))} write batches/s on the same storage`,
          ),
          lost: lost.get(preset)!,
          cpu: cpuOf(appRounds),
          mean: (name) => {
            const n = delta(before.get(preset)!, after, `${name}_count`);
            return n > 0 ? delta(before.get(preset)!, after, `${name}_sum`) / n : null;
          },
        }),
      );
    }
    return figures;
  } finally {
    await Promise.all([bare.stop(), ...[...apps.values()].map((app) => app.stop())]);
    raw.close();
    rawClient.close();
  }
}

/** The app's rate over an anchor's: the median of the rounds' paired ratios, its interval. */
function pairedFigure(anchor: readonly Round[], app: readonly Round[], what: string) {
  const rate = (r: Round) => (r.count * 1000) / r.elapsedMs;
  const estimate = pairedBootstrapRatio(anchor.map(rate), app.map(rate));
  const each = anchor.map((a, i) => (rate(app[i]!) / rate(a)).toFixed(2)).join(', ');
  return {
    value: estimate.ratio,
    interval: interval2(estimate),
    note: `${what}: median of the paired rounds' ratios (${each})`,
  };
}

const RAW_TABLE =
  'CREATE TABLE IF NOT EXISTS raw_events (id TEXT PRIMARY KEY, body TEXT NOT NULL); CREATE TABLE IF NOT EXISTS raw_log (id INTEGER PRIMARY KEY, event TEXT NOT NULL)';

/**
 * One `BEGIN IMMEDIATE; INSERT; INSERT; COMMIT` per event through `libsql`, WAL as the
 * app's; `commit(n)` runs the next n events and times them.
 */
function rawCommitter(path: string): {
  commit(events: number): Omit<Round, 'cpuMs'>;
  close(): void;
} {
  const db = new Libsql(path);
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  db.exec(RAW_TABLE);
  const insertEvent = db.prepare('INSERT INTO raw_events (id, body) VALUES (?, ?)');
  const insertLog = db.prepare('INSERT INTO raw_log (event) VALUES (?)');
  let next = 0;
  let open = true;
  return {
    commit(events) {
      const started = performance.now();
      for (let i = 0; i < events; i++, next++) {
        db.exec('BEGIN IMMEDIATE');
        insertEvent.run(`evt_${next}`, '{"type":"user.created"}');
        insertLog.run(`evt_${next}`);
        db.exec('COMMIT');
      }
      return { count: events, elapsedMs: performance.now() - started };
    },
    close() {
      if (open) db.close();
      open = false;
    },
  };
}

/**
 * One write batch of two inserts per event through `@libsql/client`, back to back (what
 * issue 14 first measured its ingest against): `commit(n)` runs the next n events, and
 * stops early after `maxMs` (against sqld, a few hundred round trips settle the rate).
 */
function rawClientCommitter(url: string): {
  commit(events: number, maxMs?: number): Promise<Omit<Round, 'cpuMs'>>;
  close(): void;
} {
  const client = createClient({ url });
  // WAL as the app's, on a file; sqld keeps its own journal
  const pragmas = url.startsWith('file:')
    ? 'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; '
    : '';
  const ready = client.executeMultiple(`${pragmas}${RAW_TABLE}`);
  ready.catch(() => {}); // awaited by each commit; a failure surfaces there
  let next = 0;
  return {
    async commit(events, maxMs = Number.POSITIVE_INFINITY) {
      await ready;
      const started = performance.now();
      let i = 0;
      for (; i < events && performance.now() - started < maxMs; i++, next++) {
        await client.batch(
          [
            { sql: 'INSERT INTO raw_events (id, body) VALUES (?, ?)', args: [`evt_${next}`, '{}'] },
            { sql: 'INSERT INTO raw_log (event) VALUES (?)', args: [`evt_${next}`] },
          ],
          'write',
        );
      }
      return { count: i, elapsedMs: performance.now() - started };
    },
    close: () => {
      if (!client.closed) client.close();
    },
  };
}

/** A figure of an anchor (no preset: the raw driver, the bare server). */
function anchor(
  metric: string,
  value: number | null,
  unit: string,
  samples: number,
  note: string,
): Figure {
  return {
    suite: 'webhooks',
    scenario: SCENARIO,
    preset: null,
    metric,
    value,
    unit,
    samples,
    note,
  };
}

function anchorFigure(db: StormDb, perSecond: number, events: number, more = ''): Figure {
  return anchor(
    `raw commits/s (${db})`,
    Math.round(perSecond),
    'commits/s',
    events,
    (db === 'file'
      ? 'one write transaction of two inserts per event, libsql prepared statements, same disk, WAL'
      : `one write batch of two inserts per event through @libsql/client, same sqld${db === 'sqld-ws' ? ', over one WebSocket' : ''}`) +
      more,
  );
}

/** A storm into sqld: one storm, right after its raw anchor on the same sqld. */
async function storm(
  ctx: SuiteContext,
  preset: string,
  target: { url: string; db: StormDb; cpuMs: () => number },
  rawPerSecond: number,
  ceilingPerSecond: number,
): Promise<Figure[]> {
  const { url: databaseUrl, db } = target;
  const { settings } = ctx;
  const server = await startAppProcess(
    productionEnv(ctx, {
      DATABASE_URL: databaseUrl,
      DB_MIGRATE_ON_START: 'true',
      DATAFLOW_PRESET: preset,
    }),
    cpuProfileArgs(ctx, `webhooks-${db}`),
  );
  ctx.cleanups.push(() => server.stop());
  try {
    ctx.progress(`webhooks: ${settings.webhookEvents} signed events, ${preset}, ${DB_LABEL[db]}`);
    const deliveries = stormDeliveries(settings.webhookEvents);
    const round = await metered(
      { server: server.cpuMs, sqld: target.cpuMs, generator: ownCpuMs },
      async () => {
        const summary = await sendDeliveries(deliveries, {
          url: server.url,
          secret: ctx.webhookSecret,
          concurrency: 32,
        });
        return { count: summary.sent, elapsedMs: summary.elapsedMs, summary };
      },
    );
    const { summary } = round;
    const valid = summary.results.filter((r) => r.delivery.kind === 'valid');
    const rate = (valid.length / summary.elapsedMs) * 1000;
    const metrics = await scrape(server.url);
    return ingestFigures({
      preset,
      db,
      perSecond: rate,
      samples: valid.length,
      vsRaw: {
        value: rate / rawPerSecond,
        note: `raw: ${Math.round(rawPerSecond)} commits/s on the same storage, this run`,
      },
      vsCeiling: {
        value: rate / ceilingPerSecond,
        note: `bare node:http: ${Math.round(ceilingPerSecond)} req/s for the same deliveries, this run`,
      },
      lost: valid.filter((r) => r.status !== 200).length + summary.unexpected.length,
      cpu: cpuOf([round]),
      mean: (name) => {
        const n = sum(metrics, `${name}_count`);
        return n > 0 ? sum(metrics, `${name}_sum`) / n : null;
      },
    });
  } finally {
    await server.stop();
  }
}

/** The storm's rate over an anchor's; from paired rounds, with its interval. */
interface VersusAnchor {
  value: number;
  note: string;
  interval?: Interval;
}

/** A storm's figures: its rate next to both anchors, what it lost, the server's own means. */
function ingestFigures(storm: {
  preset: string;
  db: StormDb;
  perSecond: number;
  samples: number;
  vsRaw: VersusAnchor;
  vsCeiling: VersusAnchor;
  /** The embedded storm only: against one `@libsql/client` write batch per event. */
  vsClient?: VersusAnchor;
  lost: number;
  /** CPU µs per delivery of each metered process. */
  cpu: ReturnType<typeof cpuOf>;
  /** A histogram's mean over the storm, or null when it recorded nothing. */
  mean: (name: string) => number | null;
}): Figure[] {
  const { db, mean } = storm;
  const meanMs = (name: string) => {
    const seconds = mean(name);
    return seconds === null ? null : Math.round(seconds * 1e4) / 10;
  };
  const suffix = db === 'file' ? '' : ` (${db})`;
  const base = {
    suite: 'webhooks',
    scenario: SCENARIO,
    preset: storm.preset,
    samples: storm.samples,
  };
  const withInterval = (versus: VersusAnchor) => ({
    note: versus.note,
    ...(versus.interval ? { interval: versus.interval } : {}),
  });
  return [
    {
      ...base,
      metric: `verified events/s${suffix}`,
      value: Math.round(storm.perSecond),
      unit: 'events/s',
      note: `svix-verified, applied or deduplicated, concurrency 32, ${DB_LABEL[db]}`,
    },
    {
      ...base,
      metric: `ingest ÷ raw commits${suffix}`,
      value: round2(storm.vsRaw.value),
      unit: 'x',
      ...withInterval(storm.vsRaw),
    },
    {
      ...base,
      metric: `ingest ÷ HTTP ceiling${suffix}`,
      value: round2(storm.vsCeiling.value),
      unit: 'x',
      ...withInterval(storm.vsCeiling),
    },
    ...(storm.vsClient
      ? [
          {
            ...base,
            metric: 'ingest ÷ raw client batches',
            value: round2(storm.vsClient.value),
            unit: 'x',
            ...withInterval(storm.vsClient),
          },
        ]
      : []),
    { ...base, metric: `lost events${suffix}`, value: storm.lost, unit: 'events' },
    ...cpuFigures(base, suffix, storm.cpu),
    {
      ...base,
      metric: `server apply time (mean)${suffix}`,
      value: meanMs('sync_webhook_apply_duration'),
      unit: 'ms',
      note: 'sync.webhook.apply.duration: dedupe + apply + change log, in a group commit',
    },
    {
      ...base,
      metric: `write batches per group commit (mean)${suffix}`,
      value: round1(mean('dataflow_db_group_commit_batches')),
      unit: 'batches',
      note: 'dataflow.db.group_commit.batches: deliveries sharing one write transaction',
    },
    {
      ...base,
      metric: `webhook lag (mean)${suffix}`,
      value: meanMs('sync_webhook_lag'),
      unit: 'ms',
      note: 'sync.webhook.lag: svix timestamp to receipt, applied events',
    },
  ];
}

/** CPU µs per delivery of the app, sqld (when metered) and the generator, over `rounds`. */
function cpuOf(rounds: readonly Round[]) {
  return {
    server: cpuPerEvent(rounds, 'server'),
    sqld: cpuPerEvent(rounds, 'sqld'),
    generator: cpuPerEvent(rounds, 'generator'),
  };
}

/**
 * Where a storm's CPU went, per delivery, and the rate those costs allow: every process
 * of the storm shares this machine's cores, so `cores / (the sum of their CPU per
 * delivery)` is what the storm could reach if no process ever waited. A rate target above
 * it asks for less CPU per delivery (or more cores), not less waiting.
 */
function cpuFigures(
  base: Omit<Figure, 'metric' | 'value' | 'unit'>,
  suffix: string,
  cpu: ReturnType<typeof cpuOf>,
): Figure[] {
  const cores = availableParallelism();
  const parts: Array<[string, number | null]> = [
    ['app', cpu.server],
    ['sqld', cpu.sqld],
    ['generator', cpu.generator],
  ];
  const spent = parts.filter((p): p is [string, number] => p[1] !== null);
  const total = spent.reduce((t, [, us]) => t + us, 0);
  const each = (metric: string, value: number | null, note: string): Figure[] =>
    value === null ? [] : [{ ...base, metric: `${metric}${suffix}`, value, unit: 'µs', note }];
  return [
    ...each(
      'server CPU per event',
      cpu.server,
      'CPU time of the app process (/proc), per delivery',
    ),
    ...each('sqld CPU per event', cpu.sqld, 'CPU time of the sqld process (/proc), per delivery'),
    ...each(
      'generator CPU per event',
      cpu.generator,
      'CPU time of the load generator (the harness process), per delivery',
    ),
    {
      ...base,
      metric: `CPU-bound rate${suffix}`,
      value: total > 0 ? Math.round((cores * 1e6) / total) : null,
      unit: 'events/s',
      note: `${cores} cores / (${spent.map(([name, us]) => `${name} ${us}`).join(' + ')} µs of CPU per delivery): the rate if no process ever waited`,
    },
  ];
}

function round1(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
