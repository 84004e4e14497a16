import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import type { PresetName } from '../../system/levers/presets.ts';
import type { Figure } from '../results.ts';
import { median, quantile } from '../stats.ts';
import {
  type BenchSuite,
  checkAborted,
  percentileFigure,
  type SuiteContext,
  startPresetServers,
} from './context.ts';

/** The p-th percentile (0–100) of unsorted values. */
const percentile = (values: readonly number[], p: number) =>
  quantile(
    [...values].sort((a, b) => a - b),
    p / 100,
  );

export const BROWSER_SCENARIO = 'the React client in Chromium, bench fixture, largest org';

/** The server presets and client configs crossed (`system/client/config.ts`). */
const SERVER_PRESETS: readonly PresetName[] = ['baseline', 'recommended'];
const CLIENT_CONFIGS = ['baseline', 'recommended'] as const;
type ClientName = (typeof CLIENT_CONFIGS)[number];

/** The anchor of time to data: a page with no framework, one fetch, one DOM write. */
const BARE_PAGE = `<!doctype html><html><body><script>
fetch('/health').then((r) => r.json()).then((body) => {
  const el = document.createElement('div');
  el.id = 'data';
  el.textContent = JSON.stringify(body);
  document.body.append(el);
});
</script></body></html>`;
const BARE_LABEL = 'bare page';

/** A figure's preset label: the server's preset and the client's config. */
export const browserLabel = (server: string, client: string) => `${server} / ${client} client`;

/**
 * The audit's client-side findings, measured where they happen: the React client
 * (`system/client/`) built for production, served by the production app, in Debian's
 * Chromium (playwright-core), counting from the browser's own network events. For each
 * server preset x client config (batching, stale times, patch vs invalidate):
 *
 * - HTTP requests and bytes per dashboard view (org + members page + projects + me), and
 *   the time from navigation to data on screen (`performance.now()` when the members rows
 *   and the org are rendered), over repeated cold loads (a fresh browser context each);
 * - webhook -> DOM latency with several tabs open: signed `user.updated` webhooks rename
 *   members shown in every tab; a MutationObserver in each tab stamps when the new name
 *   appears (one clock: the same machine);
 * - what a burst of webhooks costs each tab: HTTP requests, and member-list reads (the
 *   refetch storm of invalidate-and-refetch, or none when patches suffice).
 *
 * `SUITE=browser`, and in `PROFILE=full`.
 */
export const browserSuite: BenchSuite = {
  description:
    'the React client in Chromium (playwright-core): requests, bytes and time to data per dashboard view, webhook -> DOM latency with N tabs, refetches after a webhook burst; server preset x client config (SUITE=browser; PROFILE=full)',
  databases: ['file', 'sqld'],
  run: browserBench,
};

async function browserBench(ctx: SuiteContext): Promise<Figure[]> {
  // loaded when the suite runs (full profile or named): Vite and playwright are slow to import
  const [{ launchChromium, signedInContext }, { buildClient }] = await Promise.all([
    import('../../load/infra/chromium.ts'),
    import('../../scripts/build-client.ts'),
  ]);
  const { setup, options } = ctx;
  const quick = options.profile !== 'full';
  const views = quick ? 6 : 20;
  const tabs = quick ? 5 : 10;
  // full: 10 tabs x 100 webhooks, the 1,000 samples a p99 needs
  const events = quick ? 20 : 100;
  const burst = 20;
  const clientDir = mkdtempSync(join(tmpdir(), 'bench-client-'));
  ctx.cleanups.push(() => rmSync(clientDir, { recursive: true, force: true }));
  ctx.progress('browser: building the client, starting Chromium');
  const [, chromium] = await Promise.all([buildClient(clientDir), launchChromium()]);
  ctx.cleanups.push(() => chromium.close());
  const presets = SERVER_PRESETS.filter((p) => options.presets.includes(p));
  const servers = await startPresetServers(ctx, 'browser', {
    presets,
    env: { CLIENT_DIR: clientDir },
  });
  const session = {
    userId: setup.admin.id,
    orgId: setup.org.id,
    token: setup.token,
    expiresAt: Date.now() + 3600_000,
  };
  /** A tab signed in as the bench admin (the token the harness minted), `client` config. */
  const openTab = async (url: string, client: ClientName) => {
    const context = await signedInContext(chromium, session);
    const page = await context.newPage();
    return { page, context, open: () => page.goto(`${url}/app/?client=${client}`) };
  };
  const dataOnScreen = (page: Page) =>
    page.waitForFunction(
      () =>
        document.querySelectorAll('[data-testid="members"] tr').length > 0 &&
        document.querySelector('[data-testid="org-name"]') !== null &&
        document.querySelector('[data-testid="projects"]') !== null,
      undefined,
      { timeout: 30_000 },
    );
  const combos = presets.flatMap((server) =>
    CLIENT_CONFIGS.map((client) => ({ server, client, label: browserLabel(server, client) })),
  );
  const figures: Figure[] = [];
  const figure = (
    label: string,
    metric: string,
    value: number | null,
    unit: string,
    samples: number,
    note?: string,
  ) =>
    figures.push({
      suite: 'browser',
      scenario: BROWSER_SCENARIO,
      preset: label,
      metric,
      value,
      unit,
      samples,
      ...(note ? { note } : {}),
    });

  try {
    // 1. page views, cold, interleaved view by view across the combinations, each round
    // beside the anchor: a bare page from the same server that fetches one JSON document
    // and puts it on screen (the browser's own floor for navigation -> data)
    const perView = new Map<string, { requests: number; bytes: number; ms: number }[]>();
    const bareMs: number[] = [];
    const anchorUrl = servers.get(presets[0]!)!.url;
    for (let i = 0; i < views; i++) {
      const bare = await chromium.newContext();
      const barePage = await bare.newPage();
      await barePage.route(`${anchorUrl}/bench-anchor`, (route) =>
        route.fulfill({ contentType: 'text/html', body: BARE_PAGE }),
      );
      await barePage.goto(`${anchorUrl}/bench-anchor`);
      await barePage.waitForSelector('#data');
      bareMs.push(await barePage.evaluate(() => performance.now()));
      await bare.close();
      for (const combo of i % 2 === 0 ? combos : [...combos].reverse()) {
        checkAborted(ctx);
        if (i === 0) ctx.progress(`browser: dashboard views, ${combo.label}`);
        const tab = await openTab(servers.get(combo.server)!.url, combo.client);
        let requests = 0;
        const sizes: Promise<number>[] = [];
        tab.page.on('requestfinished', (request) => {
          if (!new URL(request.url()).pathname.startsWith('/api/')) return;
          requests += 1;
          sizes.push(request.sizes().then((s) => s.responseBodySize + s.responseHeadersSize));
        });
        await tab.open();
        await dataOnScreen(tab.page);
        const ms = await tab.page.evaluate(() => performance.now());
        // what the view loads after data is on screen belongs to it too
        await tab.page.waitForLoadState('networkidle');
        const bytes = (await Promise.all(sizes)).reduce((a, b) => a + b, 0);
        perView.set(combo.label, [...(perView.get(combo.label) ?? []), { requests, bytes, ms }]);
        await tab.context.close();
      }
    }
    figure(
      BARE_LABEL,
      'navigation -> data on screen p50',
      Math.round(percentile(bareMs, 50)),
      'ms',
      bareMs.length,
      'a bare page from the same server: one fetch of /health, its answer put in the DOM (no framework)',
    );
    for (const combo of combos) {
      const runs = perView.get(combo.label)!;
      const note = `${runs.length} cold views (fresh browser context each)`;
      figure(
        combo.label,
        'API requests per dashboard view',
        median(runs.map((r) => r.requests)),
        'requests',
        runs.length,
        note,
      );
      figure(
        combo.label,
        'API bytes per dashboard view',
        Math.round(median(runs.map((r) => r.bytes))),
        'bytes',
        runs.length,
        note,
      );
      const ms = runs.map((r) => r.ms);
      figure(
        combo.label,
        'navigation -> data on screen p50',
        Math.round(percentile(ms, 50)),
        'ms',
        runs.length,
        note,
      );
      figure(
        combo.label,
        'navigation -> data on screen p95',
        Math.round(percentile(ms, 95)),
        'ms',
        runs.length,
        note,
      );
    }

    // 2. webhook -> DOM with N tabs; 3. a burst of webhooks: requests and member-list reads
    let round = 0;
    for (const combo of combos) {
      checkAborted(ctx);
      ctx.progress(
        `browser: ${tabs} tabs, ${events} webhooks -> DOM, then a burst of ${burst}, ${combo.label}`,
      );
      const url = servers.get(combo.server)!.url;
      const opened = await Promise.all(
        Array.from({ length: tabs }, () => openTab(url, combo.client)),
      );
      // the anchor of webhook -> DOM: when each change frame reaches the tab's socket
      // (before the client does anything with it), per tab, for the pass under way
      const framesAt = opened.map(() => new Map<string, number>());
      opened.forEach((tab, t) => {
        tab.page.on('websocket', (ws) =>
          ws.on('framereceived', ({ payload }) => {
            const at = Date.now();
            let message: { type?: string; entity?: string; entityId?: string; changes?: unknown[] };
            try {
              message = JSON.parse(String(payload));
            } catch {
              return;
            }
            const changes =
              message.type === 'changes' ? (message.changes as (typeof message)[]) : [message];
            for (const change of changes) {
              if (change.type === 'change' && change.entity === 'user' && change.entityId) {
                if (!framesAt[t]!.has(change.entityId)) framesAt[t]!.set(change.entityId, at);
              }
            }
          }),
        );
      });
      for (const tab of opened) {
        await tab.page.addInitScript(() => {
          const seen: Record<string, number> = {};
          (window as unknown as { __seen: typeof seen }).__seen = seen;
          new MutationObserver(() => {
            for (const cell of document.querySelectorAll('[data-testid="members"] td.name')) {
              const match = /^Pushed(\d+)-(\d+) /.exec(cell.textContent ?? '');
              if (match && seen[`${match[1]}-${match[2]}`] === undefined) {
                seen[`${match[1]}-${match[2]}`] = Date.now();
              }
            }
          }).observe(document, { subtree: true, childList: true, characterData: true });
        });
        await tab.open();
        await dataOnScreen(tab.page);
        await tab.page.waitForFunction(
          () => document.querySelector('[data-testid="realtime-status"]')?.textContent === 'open',
        );
      }
      const shown = await opened[0]!.page.$$eval('[data-testid="members"] tr', (rows) =>
        rows.map((r) => r.getAttribute('data-user-id') ?? ''),
      );
      const users = shown
        .map((id) => setup.fixture.users.find((u) => u.id === id))
        .filter((u) => u !== undefined);
      round += 1;
      const sentAt = new Map<string, number>();
      const userOf = new Map<string, string>();
      const notApplied: string[] = [];
      const send = async (i: number) => {
        const user = users[i % users.length]!;
        const key = `${round}-${i}`;
        userOf.set(key, user.id);
        const now = Date.now();
        const body = JSON.stringify(
          userEvent(
            'user.updated',
            { ...user, firstName: `Pushed${key}`, lastName: 'x', updatedAt: now + i },
            now,
          ),
        );
        const sent = Date.now();
        const res = await fetch(`${url}/webhooks/clerk`, {
          method: 'POST',
          headers: signedHeaders(ctx.webhookSecret, `msg_browser_${key}_${now}`, body),
          body,
        });
        const outcome = ((await res.json().catch(() => ({}))) as { status?: string }).status;
        if (outcome === 'applied') sentAt.set(key, sent);
        else notApplied.push(`${res.status} ${outcome ?? ''}`.trim());
      };
      // each pass renames distinct users (a second rename of one user could replace the
      // first before it is ever drawn): passes of at most one page of members
      const perPass = Math.min(events, users.length);
      const latencies: number[] = [];
      const frameLatencies: number[] = [];
      let missing = 0;
      let applied = 0;
      for (let pass = 0; pass < Math.ceil(events / perPass); pass++) {
        round += 1;
        sentAt.clear();
        for (const frames of framesAt) frames.clear();
        for (let i = 0; i < perPass; i++) {
          await send(i);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        applied += sentAt.size;
        const deadline = Date.now() + 10_000;
        for (const [t, tab] of opened.entries()) {
          await tab.page
            .waitForFunction(
              ({ prefix, n }) =>
                Object.keys((window as unknown as { __seen: object }).__seen).filter((key) =>
                  key.startsWith(prefix),
                ).length >= n,
              // names of earlier rounds (another combination's burst) may be on screen already
              { prefix: `${round}-`, n: sentAt.size },
              // polled: a background tab's animation frames may not run
              { timeout: Math.max(1, deadline - Date.now()), polling: 50 },
            )
            .catch(() => {});
          const seen = await tab.page.evaluate(
            () => (window as unknown as { __seen: Record<string, number> }).__seen,
          );
          for (const [key, sent] of sentAt) {
            if (seen[key] !== undefined) latencies.push(seen[key]! - sent);
            else missing += 1;
            const frame = framesAt[t]!.get(userOf.get(key)!);
            if (frame !== undefined) frameLatencies.push(frame - sent);
          }
        }
      }
      if (notApplied.length > 0) {
        ctx.warnings.push(
          `browser: ${notApplied.length} webhooks not applied (${notApplied.slice(0, 3).join(', ')})`,
        );
      }
      const note = `${tabs} tabs x ${applied} applied webhooks, 50 ms apart; ${missing} renames not on screen within 10 s`;
      figure(
        combo.label,
        'webhook -> socket frame p50 (anchor)',
        frameLatencies.length ? Math.round(percentile(frameLatencies, 50)) : null,
        'ms',
        frameLatencies.length,
        'the same webhooks and tabs: the change frame reaching the tab, before the client handles it',
      );
      figure(
        combo.label,
        'webhook -> DOM p50',
        latencies.length ? Math.round(percentile(latencies, 50)) : null,
        'ms',
        latencies.length,
        note,
      );
      figures.push({
        suite: 'browser',
        scenario: BROWSER_SCENARIO,
        preset: combo.label,
        metric: 'webhook -> DOM p99',
        unit: 'ms',
        samples: latencies.length,
        ...percentileFigure(
          'p99',
          latencies.length ? percentile(latencies, 99) : null,
          latencies.length,
          note,
        ),
      });

      // the burst: one tab's reads while 20 members are renamed at once
      const watched = opened[0]!.page;
      await new Promise((resolve) => setTimeout(resolve, 500));
      let httpRequests = 0;
      const reads: string[] = [];
      watched.on('request', (request) => {
        const path = new URL(request.url()).pathname;
        if (!path.startsWith('/api/')) return;
        httpRequests += 1;
        if (path === '/api/batch') {
          const body = JSON.parse(request.postData() ?? '{}') as { requests?: { path: string }[] };
          for (const item of body.requests ?? []) reads.push(item.path);
        } else if (request.method() === 'GET') reads.push(path);
      });
      round += 1;
      await Promise.all(Array.from({ length: Math.min(burst, users.length) }, (_, i) => send(i)));
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await watched.waitForLoadState('networkidle');
      const memberReads = reads.filter((path) => path.includes('/members')).length;
      const burstNote = `one tab, ${burst} signed user.updated webhooks at once for members it shows`;
      figure(
        combo.label,
        'HTTP requests after a burst of webhooks',
        httpRequests,
        'requests',
        1,
        burstNote,
      );
      figure(
        combo.label,
        'member-list reads after a burst of webhooks',
        memberReads,
        'reads',
        1,
        burstNote,
      );
      for (const tab of opened) await tab.context.close();
    }
    return figures;
  } finally {
    await chromium.close();
    await servers.stopAll();
  }
}
