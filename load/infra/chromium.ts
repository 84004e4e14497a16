import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, chromium } from 'playwright-core';
import { DEV_SESSION_KEY, type StoredSession } from '../../system/client/auth.ts';

/** Debian's Chromium (scripts/ensure-tools installs it); never a browser a tool downloads. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless Chromium driven by playwright-core, with the flags that keep it quiet and
 * offline (no first-run, background networking, component updates or sync); playwright
 * gives it a fresh profile directory of its own.
 */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_PATH}: run scripts/ensure-tools chromium (Debian package chromium), or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

/**
 * A fresh browser context (its own storage) whose tabs start signed in as `session`, the
 * way the client's development sign-in keeps it (sessionStorage; a sign-out sticks).
 */
export async function signedInContext(
  browser: Browser,
  session: StoredSession,
): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.addInitScript(
    ({ key, value }) => {
      if (!sessionStorage.getItem(key)) sessionStorage.setItem(key, value);
    },
    { key: DEV_SESSION_KEY, value: JSON.stringify(session) },
  );
  return context;
}
