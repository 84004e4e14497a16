import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@libsql/client';
import Libsql from 'libsql';
import { buildHistory, planDeliveries } from '../../fixtures/clerk/storm.ts';
import { startAppProcess, startBundledProcess } from '../../load/infra/server-process.ts';
import { startSqld } from '../../load/infra/sqld.ts';
import { sendDeliveries } from '../../load/webhook-sender.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
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
 * HTTP stack allow on this machine before the app does any work).
 */
export const webhooksSuite: BenchSuite = {
  description:
    'webhook storm (duplicates, reordering, concurrency 32) into file and sqld: verified events/s next to raw commits/s, lost events, apply time',
  databases: ['file'],
  run: async (ctx) => {
    const figures: Figure[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'bench-webhooks-'));
    ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    ctx.progress('webhooks: raw commits on the same disk (the anchor)');
    const rawFile = rawCommitsFile(join(dir, 'raw.db'), ctx.settings.webhookEvents);
    figures.push(anchorFigure('file', rawFile, ctx.settings.webhookEvents));
    ctx.progress('webhooks: the same deliveries into a bare node:http server (the HTTP ceiling)');
    const ceiling = await httpCeiling(ctx);
    figures.push(ceiling.figure);
    for (const preset of ctx.options.presets.filter(
      (p) => p === 'baseline' || p === 'recommended',
    )) {
      checkAborted(ctx);
      const db = `file:${join(dir, `${preset}.db`)}`;
      figures.push(...(await storm(ctx, preset, db, 'file', rawFile, ceiling.perSecond)));
    }
    if (ctx.options.presets.includes('recommended')) {
      // the driver's two transports, each into a fresh sqld (the storm's ids are the same,
      // so a second storm into the first would only find duplicates): Hrana over HTTP, a
      // request per batch (what the Worker uses, and `http://` URLs), and over one
      // WebSocket (what `libsql://` and `ws://` URLs use on Node)
      for (const db of ['sqld', 'sqld-ws'] as const) {
        checkAborted(ctx);
        const sqld = await startSqld();
        ctx.cleanups.push(() => sqld.stop());
        try {
          const url = db === 'sqld' ? sqld.url : sqld.url.replace(/^http/, 'ws');
          ctx.progress(`webhooks: raw write batches against sqld (the anchor), ${DB_LABEL[db]}`);
          const raw = await rawCommitsRemote(url, Math.min(ctx.settings.webhookEvents, 1000));
          figures.push(anchorFigure(db, raw.perSecond, raw.events));
          figures.push(
            ...(await storm(ctx, 'recommended', url, db, raw.perSecond, ceiling.perSecond)),
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

/**
 * The same deliveries, same generator, same concurrency, into a bare `node:http` server
 * answering a JSON hello: twice, the first pass warming the generator (and the server),
 * the second measured.
 */
async function httpCeiling(ctx: SuiteContext): Promise<{ perSecond: number; figure: Figure }> {
  const bare = await startBundledProcess('load/infra/hello-server.ts', { HELLO: 'node' });
  ctx.cleanups.push(() => bare.stop());
  try {
    const deliveries = stormDeliveries(ctx.settings.webhookEvents);
    const send = () =>
      sendDeliveries(deliveries, { url: bare.url, secret: ctx.webhookSecret, concurrency: 32 });
    await send();
    const summary = await send();
    const perSecond = (summary.sent / summary.elapsedMs) * 1000;
    return {
      perSecond,
      figure: {
        suite: 'webhooks',
        scenario: SCENARIO,
        preset: null,
        metric: 'HTTP ceiling: bare node:http req/s',
        value: Math.round(perSecond),
        unit: 'req/s',
        samples: summary.sent,
        note: 'the same signed deliveries from the same generator (concurrency 32) into a bare node:http server that answers without reading them; second of two passes',
      },
    };
  } finally {
    await bare.stop();
  }
}
const RAW_TABLE =
  'CREATE TABLE IF NOT EXISTS raw_events (id TEXT PRIMARY KEY, body TEXT NOT NULL); CREATE TABLE IF NOT EXISTS raw_log (id INTEGER PRIMARY KEY, event TEXT NOT NULL)';

/** One `BEGIN IMMEDIATE; INSERT; INSERT; COMMIT` per event through `libsql`, WAL as the app's. */
function rawCommitsFile(path: string, events: number): number {
  const db = new Libsql(path);
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
    db.exec(RAW_TABLE);
    const insertEvent = db.prepare('INSERT INTO raw_events (id, body) VALUES (?, ?)');
    const insertLog = db.prepare('INSERT INTO raw_log (event) VALUES (?)');
    const started = performance.now();
    for (let i = 0; i < events; i++) {
      db.exec('BEGIN IMMEDIATE');
      insertEvent.run(`evt_${i}`, '{"type":"user.created"}');
      insertLog.run(`evt_${i}`);
      db.exec('COMMIT');
    }
    return (events * 1000) / (performance.now() - started);
  } finally {
    db.close();
  }
}

/**
 * One write batch of two inserts per event through `@libsql/client`, back to back: up to
 * `events`, and no longer than `maxMs` (a rate; a few hundred round trips settle it).
 */
async function rawCommitsRemote(
  url: string,
  events: number,
  maxMs = 2000,
): Promise<{ perSecond: number; events: number }> {
  const client = createClient({ url });
  try {
    await client.executeMultiple(RAW_TABLE);
    const started = performance.now();
    let i = 0;
    for (; i < events && performance.now() - started < maxMs; i++) {
      await client.batch(
        [
          { sql: 'INSERT INTO raw_events (id, body) VALUES (?, ?)', args: [`evt_${i}`, '{}'] },
          { sql: 'INSERT INTO raw_log (event) VALUES (?)', args: [`evt_${i}`] },
        ],
        'write',
      );
    }
    return { perSecond: (i * 1000) / (performance.now() - started), events: i };
  } finally {
    client.close();
  }
}

function anchorFigure(db: StormDb, perSecond: number, events: number): Figure {
  return {
    suite: 'webhooks',
    scenario: SCENARIO,
    preset: null,
    metric: `raw commits/s (${db})`,
    value: Math.round(perSecond),
    unit: 'commits/s',
    samples: events,
    note:
      db === 'file'
        ? 'one write transaction of two inserts per event, libsql prepared statements, same disk, WAL'
        : `one write batch of two inserts per event through @libsql/client, same sqld${db === 'sqld-ws' ? ', over one WebSocket' : ''}`,
  };
}

async function storm(
  ctx: SuiteContext,
  preset: string,
  databaseUrl: string,
  db: StormDb,
  rawPerSecond: number,
  ceilingPerSecond: number,
): Promise<Figure[]> {
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
    ctx.progress(`webhooks: ${settings.webhookEvents} signed events, ${preset}, ${db}`);
    const deliveries = stormDeliveries(settings.webhookEvents);
    const summary = await sendDeliveries(deliveries, {
      url: server.url,
      secret: ctx.webhookSecret,
      concurrency: 32,
    });
    const valid = summary.results.filter((r) => r.delivery.kind === 'valid');
    const lost = valid.filter((r) => r.status !== 200).length + summary.unexpected.length;
    const perSecond = (valid.length / summary.elapsedMs) * 1000;
    const metrics = await scrape(server.url);
    /** A histogram's mean over the storm, or null when it recorded nothing. */
    const mean = (name: string) => {
      const count = sum(metrics, `${name}_count`);
      return count > 0 ? sum(metrics, `${name}_sum`) / count : null;
    };
    const meanMs = (name: string) => {
      const seconds = mean(name);
      return seconds === null ? null : Math.round(seconds * 1e4) / 10;
    };
    const suffix = db === 'file' ? '' : ` (${db})`;
    const base = { suite: 'webhooks', scenario: SCENARIO, preset, samples: valid.length };
    return [
      {
        ...base,
        metric: `verified events/s${suffix}`,
        value: Math.round(perSecond),
        unit: 'events/s',
        note: `svix-verified, applied or deduplicated, concurrency 32, ${DB_LABEL[db]}`,
      },
      {
        ...base,
        metric: `ingest ÷ raw commits${suffix}`,
        value: Math.round((perSecond / rawPerSecond) * 100) / 100,
        unit: 'x',
        note: `raw: ${Math.round(rawPerSecond)} commits/s on the same storage, this run`,
      },
      {
        ...base,
        metric: `ingest ÷ HTTP ceiling${suffix}`,
        value: Math.round((perSecond / ceilingPerSecond) * 100) / 100,
        unit: 'x',
        note: `bare node:http: ${Math.round(ceilingPerSecond)} req/s for the same deliveries, this run`,
      },
      { ...base, metric: `lost events${suffix}`, value: lost, unit: 'events' },
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
  } finally {
    await server.stop();
  }
}

function round1(value: number | null): number | null {
  return value === null ? null : Math.round(value * 10) / 10;
}
