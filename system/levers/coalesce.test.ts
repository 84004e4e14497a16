import type { Attributes, Span } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureStageSpans } from '../trace.ts';
import { createCoalescer, resolveCoalesceConfig } from './coalesce.ts';

// as in production, a short stage (the follower's wait) makes no span of its own
beforeAll(() => configureStageSpans({ minDurationMs: 60_000 }));
afterAll(() => configureStageSpans({ minDurationMs: 0 }));

/** A sampled request's span, as far as the coalescer sees it: the attributes set on it. */
function requestSpan(): { span: Span; attributes: Attributes } {
  const attributes: Attributes = {};
  const span = {
    setAttributes(more: Attributes) {
      Object.assign(attributes, more);
      return span;
    },
  } as unknown as Span;
  return { span, attributes };
}

describe('coalescer: every request says its role on its own span', () => {
  it('leader, follower and window each set dataflow.coalesce.role on their request', async () => {
    const coalescer = createCoalescer(resolveCoalesceConfig({ window: 1000 }));
    let finish!: () => void;
    const led = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const lead = async () => {
      await led;
      return { ok: true, share: async () => 'page' };
    };
    const request = (role: ReturnType<typeof requestSpan>) => ({
      scope: 'org_1',
      key: 'GET /api/orgs/org_1/members',
      route: '/api/orgs/:orgId/members',
      trace: { span: role.span },
    });
    const leader = requestSpan();
    const follower = requestSpan();
    const late = requestSpan();
    const first = coalescer.run(request(leader), lead);
    const second = coalescer.run(request(follower), lead);
    finish();
    expect((await first).role).toBe('leader');
    expect(await second).toMatchObject({ role: 'follower', shared: 'page' });
    // within the window, after the leader finished
    expect((await coalescer.run(request(late), lead)).role).toBe('window');

    expect(leader.attributes['dataflow.coalesce.role']).toBe('leader');
    expect(follower.attributes['dataflow.coalesce.role']).toBe('follower');
    expect(late.attributes['dataflow.coalesce.role']).toBe('window');
  });
});
