import { Hono } from 'hono';
import type { AppEnv } from '../context.ts';

export interface ReadinessCheck {
  /** Each check resolves to true when healthy; a throw counts as unhealthy. */
  [name: string]: () => Promise<boolean>;
}

/** `GET /health`: the process is alive. `GET /ready`: every dependency check passes. */
export function healthRoutes(checks: ReadinessCheck) {
  return new Hono<AppEnv>()
    .get('/health', (c) => c.json({ status: 'ok' }))
    .get('/ready', async (c) => {
      const entries = await Promise.all(
        Object.entries(checks).map(async ([name, check]) => {
          const ok = await check().catch(() => false);
          return [name, ok ? 'ok' : 'failing'] as const;
        }),
      );
      const ready = entries.every(([, state]) => state === 'ok');
      return c.json(
        { status: ready ? 'ready' : 'not_ready', checks: Object.fromEntries(entries) },
        ready ? 200 : 503,
      );
    });
}
