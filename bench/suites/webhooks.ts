import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildHistory, planDeliveries } from '../../fixtures/clerk/storm.ts';
import { startServerProcess } from '../../load/infra/server-process.ts';
import { sendDeliveries } from '../../load/webhook-sender.ts';
import { scrape, sum } from '../prometheus-text.ts';
import type { Figure } from '../results.ts';
import { type BenchSuite, checkAborted, productionEnv, type SuiteContext } from './context.ts';

/**
 * A webhook storm per preset (baseline, recommended): signed Clerk events with the
 * network's habits (10% duplicates, 20% reordered), 32 concurrent deliveries into a
 * fresh app process on its own embedded database. Every valid delivery must be applied
 * or deduplicated; the server's own apply time and lag come from `/metrics`.
 */
export const webhooksSuite: BenchSuite = {
  description:
    'webhook storm: signed Clerk events (duplicates, reordering) at concurrency 32; verified events/s, lost events, apply time',
  databases: ['file'],
  run: async (ctx) => {
    const figures: Figure[] = [];
    for (const preset of ctx.options.presets.filter(
      (p) => p === 'baseline' || p === 'recommended',
    )) {
      checkAborted(ctx);
      figures.push(...(await storm(ctx, preset)));
    }
    return figures;
  },
};

async function storm(ctx: SuiteContext, preset: string): Promise<Figure[]> {
  const { settings } = ctx;
  const dir = mkdtempSync(join(tmpdir(), 'bench-webhooks-'));
  ctx.cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServerProcess(
    productionEnv(ctx, {
      DATABASE_URL: `file:${join(dir, 'app.db')}`,
      DB_MIGRATE_ON_START: 'true',
      DATAFLOW_PRESET: preset,
    }),
  );
  ctx.cleanups.push(() => server.stop());
  try {
    ctx.progress(`webhooks: ${settings.webhookEvents} signed events, ${preset}`);
    // the network's habits: some duplicates and reordering (signed, all valid)
    const deliveries = planDeliveries(buildHistory({ seed: 7, count: settings.webhookEvents }), {
      seed: 7,
      duplicates: 0.1,
      reorder: 0.2,
    });
    const summary = await sendDeliveries(deliveries, {
      url: server.url,
      secret: ctx.webhookSecret,
      concurrency: 32,
    });
    const valid = summary.results.filter((r) => r.delivery.kind === 'valid');
    const lost = valid.filter((r) => r.status !== 200).length + summary.unexpected.length;
    const perSecond = Math.round((valid.length / summary.elapsedMs) * 1000);
    const metrics = await scrape(server.url);
    const meanMs = (name: string) => {
      const count = sum(metrics, `${name}_count`);
      return count > 0 ? Math.round((sum(metrics, `${name}_sum`) / count) * 1e4) / 10 : null;
    };
    const base = { suite: 'webhooks', scenario: 'webhook storm', preset, samples: valid.length };
    return [
      {
        ...base,
        metric: 'verified events/s',
        value: perSecond,
        unit: 'events/s',
        note: 'svix-verified, applied or deduplicated, concurrency 32, embedded DB',
      },
      { ...base, metric: 'lost events', value: lost, unit: 'events' },
      {
        ...base,
        metric: 'server apply time (mean)',
        value: meanMs('sync_webhook_apply_duration'),
        unit: 'ms',
        note: 'sync.webhook.apply.duration: dedupe + apply + change log, one write batch',
      },
      {
        ...base,
        metric: 'webhook lag (mean)',
        value: meanMs('sync_webhook_lag'),
        unit: 'ms',
        note: 'sync.webhook.lag: svix timestamp to receipt, applied events',
      },
    ];
  } finally {
    await server.stop();
  }
}
