import { Hono } from 'hono';
import { describe, expect, it, vi } from 'vitest';
import type { Session } from '../../auth/session.ts';
import {
  type CoalesceConfig,
  type CoalesceEvent,
  createCoalescer,
  resolveCoalesceConfig,
} from '../../levers/coalesce.ts';
import { setEarlyHeader } from '../../response-headers.ts';
import type { AppEnv } from '../context.ts';
import { createErrorHandler } from '../errors.ts';
import { coalesce } from './coalesce.ts';

// The middleware on a tiny app whose handler we control: counts, fails, hangs.
function harness(config: CoalesceConfig, handler: (n: number) => Promise<Response | string>) {
  let executions = 0;
  const events: CoalesceEvent[] = [];
  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler({ error() {} }));
  app.use('*', async (c, next) => {
    const user = c.req.header('x-user') ?? 'user_a';
    const org = c.req.header('x-org') ?? 'org_a';
    const requestId = c.req.header('x-request-id') ?? 'rid';
    c.set('requestId', requestId);
    // as `requestIds()` does: an early header, each request's own
    setEarlyHeader(c, 'X-Request-Id', requestId);
    c.set('session', { userId: user, orgId: org } as Session);
    await next();
  });
  const resolved = resolveCoalesceConfig(config);
  const coalescer = createCoalescer(resolved, {
    onCoalesce: (e) => events.push(e),
  });
  app.use('*', coalesce(resolved, coalescer));
  app.get('/items/:id', async (c) => {
    executions += 1;
    const out = await handler(executions);
    return typeof out === 'string' ? c.json({ out, user: c.var.session.userId }) : out;
  });
  const get = (path = '/items/1', headers: Record<string, string> = {}) =>
    app.request(path, { headers });
  return { get, executions: () => executions, events };
}

const gate = () => {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { open, opened };
};

describe('coalesce', () => {
  it('identical in-flight reads share one execution; followers get a copy with their own request id', async () => {
    const g = gate();
    const h = harness({}, async (n) => {
      await g.opened;
      return `run ${n}`;
    });
    const pending = Array.from({ length: 200 }, (_, i) =>
      h.get('/items/1?b=2&a=1', { 'x-request-id': `r${i}` }),
    );
    g.open();
    const responses = await Promise.all(pending);
    expect(h.executions()).toBe(1);
    const bodies = await Promise.all(responses.map((r) => r.json()));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
    expect(responses[7]!.headers.get('x-request-id')).toBe('r7');
    expect(responses.filter((r) => r.headers.get('x-coalesced') === 'follower')).toHaveLength(199);
    expect(h.events.filter((e) => e.role === 'leader')).toHaveLength(1);
    expect(h.events[0]?.route).toBe('/items/:id');
  });

  it('normalizes the query: parameter order does not matter, values do', async () => {
    const g = gate();
    const h = harness({}, async () => {
      await g.opened;
      return 'x';
    });
    const pending = [
      h.get('/items/1?a=1&b=2'),
      h.get('/items/1?b=2&a=1'),
      h.get('/items/1?a=1&b=3'),
    ];
    g.open();
    await Promise.all(pending);
    expect(h.executions()).toBe(2);
  });

  it('never shares across callers: the scope (user and org) is always part of the key', async () => {
    const g = gate();
    const h = harness({ keyGenerator: () => 'everything-is-the-same' }, async () => {
      await g.opened;
      return 'x';
    });
    const pending = [
      h.get('/items/1', { 'x-user': 'user_a', 'x-org': 'org_a' }),
      h.get('/items/1', { 'x-user': 'user_b', 'x-org': 'org_a' }),
      h.get('/items/1', { 'x-user': 'user_a', 'x-org': 'org_b' }),
    ];
    g.open();
    const bodies = await Promise.all((await Promise.all(pending)).map((r) => r.json()));
    expect(h.executions()).toBe(3);
    expect(bodies.map((b) => b.user)).toEqual(['user_a', 'user_b', 'user_a']);
  });

  it('window 0 keeps nothing after completion; a window keeps it that long', async () => {
    const h0 = harness({ window: 0 }, async () => 'x');
    await h0.get();
    await h0.get();
    expect(h0.executions()).toBe(2);
    const hw = harness({ window: 200 }, async () => 'x');
    await hw.get();
    await hw.get();
    expect(hw.executions()).toBe(1);
    expect(hw.events.map((e) => e.role)).toEqual(['leader', 'window']);
    await new Promise((r) => setTimeout(r, 260));
    await hw.get();
    expect(hw.executions()).toBe(2);
  });

  it('maxRequests caps followers per leader; the rest run on their own', async () => {
    const g = gate();
    const h = harness({ maxRequests: 3 }, async () => {
      await g.opened;
      return 'x';
    });
    const pending = Array.from({ length: 6 }, () => h.get());
    g.open();
    await Promise.all(pending);
    expect(h.executions()).toBe(3); // 1 leader with 3 followers, then 2 overflow
    expect(h.events.filter((e) => e.role === 'overflow')).toHaveLength(2);
  });

  it('an error goes once to the current waiters and is not kept', async () => {
    const g = gate();
    const h = harness({ window: 1000 }, async (n) => {
      await g.opened;
      if (n === 1) throw new Error('db down');
      return 'recovered';
    });
    const pending = Array.from({ length: 5 }, () => h.get());
    g.open();
    const statuses = (await Promise.all(pending)).map((r) => r.status);
    expect(statuses).toEqual([500, 500, 500, 500, 500]);
    expect(h.executions()).toBe(1);
    const after = await h.get();
    expect(after.status).toBe(200);
    expect(h.executions()).toBe(2);
  });

  /** The first run hangs until released: a follower, then a fresh arrival, while it hangs. */
  const hangingLeader = async (deadlineMs: number) => {
    let release!: () => void;
    const hung = new Promise<void>((r) => {
      release = r;
    });
    const h = harness({ deadlineMs }, async (n) => {
      if (n === 1) await hung;
      return `run ${n}`;
    });
    const leader = h.get();
    const follower = await h.get();
    const fresh = await h.get();
    release();
    return { follower, fresh, leader: await leader };
  };

  it('a hanging leader releases the key at its deadline; its followers time out with 503', async () => {
    const { follower, fresh, leader } = await hangingLeader(100);
    expect(follower.status).toBe(503);
    expect(follower.headers.get('retry-after')).toBe('1');
    // the key was released: a new leader ran
    expect(await fresh.json()).toMatchObject({ out: 'run 2' });
    expect(leader.status).toBe(200);
  });

  it('a follower that timed out releases the key, whatever the wall clock says', async () => {
    // the follower's timer and Date.now() are different clocks: frozen here, an arrival
    // right after the timeout would otherwise still join the hung leader
    const clock = vi.spyOn(Date, 'now').mockReturnValue(Date.now());
    try {
      const { follower, fresh, leader } = await hangingLeader(50);
      expect(follower.status).toBe(503);
      expect(await fresh.json()).toMatchObject({ out: 'run 2' });
      expect(leader.status).toBe(200);
    } finally {
      clock.mockRestore();
    }
  });

  it('validates its options by name', () => {
    expect(() => resolveCoalesceConfig({ window: -1 })).toThrow(
      'coalesce.window must be milliseconds from 0 to 60000; received -1',
    );
    expect(() => resolveCoalesceConfig({ maxRequests: 0 })).toThrow(/coalesce.maxRequests/);
  });
});
