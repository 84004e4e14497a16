import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { membershipEvent, userEvent } from '../../fixtures/clerk/events.ts';
import { generateFixture } from '../../fixtures/seed/generate.ts';
import { loadFixture } from '../../fixtures/seed/load.ts';
import { launchChromium, signedInContext } from '../../load/infra/chromium.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import { buildClient } from '../../scripts/build-client.ts';
import { DEV_SESSION_KEY } from '../../system/client/auth.ts';
import { countMembers } from '../../system/db/queries/memberships.ts';
import { getProject, insertProject } from '../../system/db/queries/projects.ts';
import { newId } from '../../system/ids.ts';
import { testKeys } from '../support/harness.ts';
import { type Cast, castFrom } from '../support/people.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const SCREENSHOTS = 'results/screenshots';

/**
 * The React client (system/client/) in Debian's Chromium, driven by playwright-core,
 * against the real Node server serving the built client at /app/ over a seeded file
 * database: the development sign-in, the views, optimistic edits and their rollback,
 * webhook-driven changes in the DOM, a server restart, and the org scope.
 */
describe('the React client in a real browser', () => {
  const fixture = generateFixture('small');
  const cast: Cast = castFrom(fixture);
  let clientDir: string;
  let server: TestServer & { cleanup(): Promise<void> };
  let browser: Browser;
  const contexts: BrowserContext[] = [];

  const start = async (env: Record<string, string> = {}) =>
    startTestServer(
      { CLIENT_DIR: clientDir, NODE_ENV: 'development', ...env },
      { devSigningKeyPem: testKeys().privateKey },
    );

  beforeAll(async () => {
    clientDir = mkdtempSync(join(tmpdir(), 'dataflow-client-'));
    [, browser] = await Promise.all([buildClient(clientDir), launchChromium()]);
    server = await start();
    await loadFixture(server.database, fixture);
    mkdirSync(SCREENSHOTS, { recursive: true });
  }, 120_000);
  afterEach(async () => {
    for (const context of contexts.splice(0)) await context.close();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.cleanup();
    rmSync(clientDir, { recursive: true, force: true });
  });

  /** A fresh tab; signed in as `userId` into `orgId` when given (the dev sign-in's session). */
  const openTab = async (as?: { userId: string; orgId: string }, query = '') => {
    let context: BrowserContext;
    if (as) {
      const res = await fetch(`${server.url}/dev/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(as),
      });
      const { token, expiresAt } = (await res.json()) as { token: string; expiresAt: number };
      context = await signedInContext(browser, { ...as, token, expiresAt });
    } else {
      context = await browser.newContext();
    }
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${server.url}/app/${query}`);
    return page;
  };
  const asAdmin = () => ({ userId: cast.adminA.id, orgId: cast.orgA.id });
  const memberRows = (page: Page) => page.locator('[data-testid="members"] tr');

  /** The API reads a page makes: direct GETs and the items of batches. */
  const recordReads = (page: Page) => {
    const reads: string[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (request.method() === 'GET' && url.pathname.startsWith('/api/')) {
        reads.push(url.pathname + url.search);
      } else if (url.pathname === '/api/batch') {
        const body = JSON.parse(request.postData() ?? '{}') as { requests?: { path: string }[] };
        for (const item of body.requests ?? []) reads.push(item.path);
      }
    });
    return reads;
  };

  it('signs in with the development sign-in and shows the org, its members and projects', async () => {
    const page = await openTab();
    await page.waitForURL(/\/app\/sign-in/);
    const first = page.locator('[data-testid="sign-in"] li').first();
    const orgId = await first.locator('button').first().getAttribute('data-org-id');
    await page.screenshot({ path: `${SCREENSHOTS}/sign-in.png` });
    await first.locator('button').first().click();
    const org = fixture.organizations.find((o) => o.id === orgId)!;
    await expect.poll(() => page.getByTestId('org-name').textContent()).toBe(org.name);
    const count = await countMembers(server.database.db, org.id);
    await expect.poll(() => page.getByTestId('member-count').textContent()).toBe(String(count));
    await expect.poll(() => memberRows(page).count()).toBe(Math.min(50, count));
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
    await page.screenshot({ path: `${SCREENSHOTS}/dashboard.png`, fullPage: true });
  });

  it('pages through the members, 50 at a time, without repeating anyone', async () => {
    const page = await openTab(asAdmin(), 'members');
    await expect.poll(() => memberRows(page).count()).toBe(50);
    const firstPage = await memberRows(page).evaluateAll((rows) =>
      rows.map((r) => r.getAttribute('data-user-id')),
    );
    await page.screenshot({ path: `${SCREENSHOTS}/members.png`, fullPage: true });
    await page.getByTestId('next-page').click();
    const total = await countMembers(server.database.db, cast.orgA.id);
    await expect.poll(() => memberRows(page).count()).toBe(total - 50);
    const secondPage = await memberRows(page).evaluateAll((rows) =>
      rows.map((r) => r.getAttribute('data-user-id')),
    );
    expect(secondPage.filter((id) => firstPage.includes(id))).toEqual([]);
    await page.getByTestId('first-page').click();
    await expect.poll(() => memberRows(page).count()).toBe(50);
  });

  it('creates and renames a project: optimistic at once, then confirmed by the server', async () => {
    const page = await openTab(asAdmin(), 'projects');
    await page.getByTestId('new-project').fill('Made in Chromium');
    await page.getByTestId('new-project').press('Enter');
    const row = page.locator('[data-testid="projects"] li', { hasText: 'Made in Chromium' });
    await expect.poll(() => row.count()).toBe(1);
    await expect.poll(() => row.getAttribute('data-project-id')).toMatch(/^proj_/);
    const id = (await row.getAttribute('data-project-id'))!;
    expect((await getProject(server.database.db, cast.orgA.id, id))?.name).toBe('Made in Chromium');
    const confirmed = page.locator(`[data-project-id="${id}"]`);
    await confirmed.getByRole('button', { name: 'Rename' }).click();
    await confirmed.getByLabel('Project name').fill('Renamed in Chromium');
    await confirmed.getByRole('button', { name: 'Save' }).click();
    await expect
      .poll(() => confirmed.locator('.project-name').textContent())
      .toBe('Renamed in Chromium');
    await expect
      .poll(async () => (await getProject(server.database.db, cast.orgA.id, id))?.name)
      .toBe('Renamed in Chromium');
    await page.screenshot({ path: `${SCREENSHOTS}/projects.png`, fullPage: true });
  });

  it('a server error rolls the optimistic rename back and says so', async () => {
    const { row: project } = await insertProject(
      server.database.db,
      {
        id: newId('proj'),
        orgId: cast.orgA.id,
        name: 'Keeps its name',
        status: 'active',
        createdBy: cast.adminA.id,
      },
      { now: Date.now(), traceContext: null },
    );
    const page = await openTab(asAdmin(), 'projects');
    let failed = 0;
    await page.route('**/api/orgs/*/projects/*', async (route) => {
      if (route.request().method() !== 'PATCH') return route.fallback();
      failed += 1;
      await new Promise((resolve) => setTimeout(resolve, 300)); // long enough to see the guess
      await route.fulfill({
        status: 500,
        contentType: 'application/json',
        body: JSON.stringify({ error: { code: 'internal', message: 'forced by the test' } }),
      });
    });
    const row = page.locator(`[data-project-id="${project.id}"]`);
    await row.getByRole('button', { name: 'Rename' }).click();
    await row.getByLabel('Project name').fill('Never saved');
    await row.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => row.locator('.project-name').textContent()).toBe('Never saved');
    await expect
      .poll(() => page.getByTestId('edit-error').textContent())
      .toBe('forced by the test');
    await expect.poll(() => row.locator('.project-name').textContent()).toBe('Keeps its name');
    expect(failed).toBe(1);
    expect((await getProject(server.database.db, cast.orgA.id, project.id))?.name).toBe(
      'Keeps its name',
    );
  });

  it('a webhook changes a member in the DOM without a reload and without a member-list refetch', async () => {
    const page = await openTab(asAdmin());
    let sockets = 0;
    page.on('websocket', () => {
      sockets += 1;
    });
    await expect.poll(() => memberRows(page).count()).toBe(50);
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
    const userId = (await memberRows(page).nth(3).getAttribute('data-user-id'))!;
    const user = fixture.users.find((u) => u.id === userId)!;
    const reads = recordReads(page);
    const now = Date.now();
    const body = JSON.stringify(
      userEvent('user.updated', { ...user, firstName: 'Pushed', updatedAt: now }, now),
    );
    const res = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, `msg_browser_${now}`, body),
      body,
    });
    expect(res.status).toBe(200);
    const row = page.locator(`[data-testid="members"] tr[data-user-id="${userId}"] .name`);
    await expect.poll(() => row.textContent()).toBe(`Pushed ${user.lastName ?? ''}`.trim());
    expect(
      reads.filter((path) => path.includes('/members')),
      reads.join(' '),
    ).toEqual([]);
    expect(reads).toEqual([`/api/users/${userId}`]);
    expect(sockets).toBe(1); // one socket per tab
  });

  it('an ended membership leaves the list and the count at once, without a refetch', async () => {
    const page = await openTab(asAdmin());
    await expect.poll(() => memberRows(page).count()).toBe(50);
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
    const before = Number(await page.getByTestId('member-count').textContent());
    const userId = (await memberRows(page).nth(7).getAttribute('data-user-id'))!;
    const membership = fixture.memberships.find(
      (m) => m.orgId === cast.orgA.id && m.userId === userId,
    )!;
    const reads = recordReads(page);
    const now = Date.now();
    const body = JSON.stringify(
      membershipEvent('organizationMembership.deleted', { ...membership, updatedAt: now }, now),
    );
    const res = await fetch(`${server.url}/webhooks/clerk`, {
      method: 'POST',
      headers: signedHeaders(server.webhookSecret, `msg_browser_left_${now}`, body),
      body,
    });
    expect(res.status).toBe(200);
    await expect
      .poll(() => page.locator(`[data-testid="members"] tr[data-user-id="${userId}"]`).count())
      .toBe(0);
    await expect
      .poll(() => page.getByTestId('member-count').textContent())
      .toBe(String(before - 1));
    expect(reads).toEqual([]);
  });

  it('survives a server restart: reconnects, resumes, and shows what changed while it was down', async () => {
    const page = await openTab(asAdmin(), 'projects');
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
    const port = new URL(server.url).port;
    const env = server.env;
    await server.close();
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).not.toBe('open');
    server = await start({ ...env, PORT: port, CLIENT_DIR: clientDir });
    // committed before the tab is back: only the resume can bring it
    await insertProject(
      server.database.db,
      {
        id: newId('proj'),
        orgId: cast.orgA.id,
        name: 'While you were away',
        status: 'active',
        createdBy: cast.adminA.id,
      },
      { now: Date.now(), traceContext: null },
    );
    await expect
      .poll(
        () =>
          page.locator('[data-testid="projects"] li', { hasText: 'While you were away' }).count(),
        {
          timeout: 15_000,
        },
      )
      .toBe(1);
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
  });

  it('switches organization: the org, its members and the socket follow', async () => {
    const { user, home, away } = cast.bridge;
    const page = await openTab({ userId: user.id, orgId: home });
    const name = (id: string) => fixture.organizations.find((o) => o.id === id)!.name;
    await expect.poll(() => page.getByTestId('org-name').textContent()).toBe(name(home));
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.getByTestId('org-switcher').selectOption(away);
    await expect.poll(() => page.getByTestId('org-name').textContent()).toBe(name(away));
    const awayMembers = new Set(
      fixture.memberships.filter((m) => m.orgId === away).map((m) => m.userId),
    );
    await expect
      .poll(async () =>
        (
          await memberRows(page).evaluateAll((rows) =>
            rows.map((r) => r.getAttribute('data-user-id')),
          )
        ).every((id) => id !== null && awayMembers.has(id)),
      )
      .toBe(true);
    await expect.poll(() => sockets.length).toBe(1); // a new socket, for the new org
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
  });

  it('every API request and the socket carry a W3C traceparent; no token in any URL', async () => {
    const page = await openTab(asAdmin());
    const urls: string[] = [];
    const missing: string[] = [];
    page.on('request', (request) => {
      urls.push(request.url());
      const path = new URL(request.url()).pathname;
      if (
        path.startsWith('/api/') &&
        !/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/.test(request.headers().traceparent ?? '')
      ) {
        missing.push(path);
      }
    });
    page.on('websocket', (ws) => urls.push(ws.url()));
    await page.reload();
    await expect.poll(() => memberRows(page).count()).toBe(50);
    await expect.poll(() => page.getByTestId('realtime-status').textContent()).toBe('open');
    expect(missing).toEqual([]);
    const socket = urls.find((url) => url.startsWith('ws'))!;
    expect(new URL(socket).searchParams.get('traceparent')).toMatch(/^00-[0-9a-f]{32}-/);
    const { token } = JSON.parse(
      (await page.evaluate((key) => sessionStorage.getItem(key), DEV_SESSION_KEY))!,
    ) as { token: string };
    for (const url of urls) expect(url).not.toContain(token.slice(-20));
  });

  it("never shows another organization's data", async () => {
    const page = await openTab({ userId: cast.strangerB.id, orgId: cast.orgB.id });
    await expect.poll(() => page.getByTestId('org-name').textContent()).toBe(cast.orgB.name);
    await expect.poll(() => memberRows(page).count()).toBeGreaterThan(0);
    const shown = await memberRows(page).evaluateAll((rows) =>
      rows.map((r) => r.getAttribute('data-user-id')),
    );
    expect(shown).not.toContain(cast.adminA.id);
    const html = await page.content();
    expect(html).not.toContain(cast.orgA.name);
    // the tab's own token cannot read org A either
    const status = await page.evaluate(
      async ({ orgA, key }) => {
        const { token } = JSON.parse(sessionStorage.getItem(key)!) as {
          token: string;
        };
        const res = await fetch(`/api/orgs/${orgA}/members`, {
          headers: { authorization: `Bearer ${token}` },
        });
        return res.status;
      },
      { orgA: cast.orgA.id, key: DEV_SESSION_KEY },
    );
    expect(status).toBe(404);
  });

  it('the development sign-in does not exist in production', async () => {
    const production = await start({ NODE_ENV: 'production' });
    try {
      expect((await fetch(`${production.url}/dev/users`)).status).toBe(404);
      const res = await fetch(`${production.url}/dev/session`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(asAdmin()),
      });
      expect(res.status).toBe(404);
      // the client itself is served, and its sign-in page says the dev sign-in is not there
      expect((await fetch(`${production.url}/app/`)).status).toBe(200);
    } finally {
      await production.cleanup();
    }
  });
});
