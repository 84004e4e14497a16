import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ChangeRow } from '../db/schema.ts';
import { type ChangeSource, createHub, type Hub, type HubSocket } from './hub.ts';

// Unit tests with an in-memory change log and fake sockets whose buffer we control.

const row = (id: number, orgId = 'org_a'): ChangeRow => ({
  id,
  orgId,
  entity: 'project',
  entityId: `proj_${id}`,
  op: 'upsert',
  version: 1,
  data: '{}',
  traceContext: null,
  createdAt: 0,
});

class FakeSocket implements HubSocket {
  frames: Array<Record<string, unknown>> = [];
  buffered = 0;
  closedWith: { code: number; reason: string } | null = null;
  send(text: string) {
    this.frames.push(JSON.parse(text) as Record<string, unknown>);
  }
  close(code: number, reason: string) {
    this.closedWith = { code, reason };
  }
  bufferedAmount() {
    return this.buffered;
  }
  of(type: string) {
    return this.frames.filter((f) => f.type === type);
  }
}

function memorySource(log: ChangeRow[]): ChangeSource {
  return {
    orgChangesAfter: async (orgId, afterId, limit) =>
      log.filter((r) => r.orgId === orgId && r.id > afterId).slice(0, limit),
    changeById: async (id) => log.find((r) => r.id === id) ?? null,
    bounds: async () => ({ newest: log.at(-1)?.id ?? 0, oldest: log[0]?.id ?? 0 }),
    latestForOrg: async (orgId) => log.filter((r) => r.orgId === orgId).at(-1)?.id ?? 0,
  };
}

const settle = () => vi.advanceTimersByTimeAsync(0);

describe('createHub', () => {
  let log: ChangeRow[];
  let hub: Hub;
  let now: number;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000_000;
    log = [row(1), row(2, 'org_b'), row(3)];
    hub = createHub({
      source: memorySource(log),
      heartbeatMs: 1000,
      highWaterBytes: 1000,
      maxLagMs: 5000,
      maxReplay: 3,
      maxConnectionsPerUser: 2,
      now: () => now,
    });
  });
  afterEach(() => {
    hub.close();
    vi.useRealTimers();
  });

  const connect = async (orgId = 'org_a', userId = 'user_1') => {
    const socket = new FakeSocket();
    const conn = hub.connect(socket, { userId, orgId });
    await settle();
    return { socket, conn };
  };

  it('greets with the newest event id of the org', async () => {
    const { socket } = await connect();
    expect(socket.of('hello')[0]).toMatchObject({ orgId: 'org_a', lastEventId: 3 });
  });

  it('broadcasts to the org topic only', async () => {
    const a = await connect('org_a');
    const b = await connect('org_b', 'user_2');
    log.push(row(4), row(5, 'org_b'));
    hub.broadcast([row(4), row(5, 'org_b')]);
    expect(a.socket.of('change').map((f) => f.id)).toEqual([4]);
    expect(b.socket.of('change').map((f) => f.id)).toEqual([5]);
  });

  it('resume on connect replays before any live row, then says synced', async () => {
    const socket = new FakeSocket();
    hub.connect(socket, { userId: 'user_r', orgId: 'org_a' }, { resumeFrom: 1 });
    log.push(row(7));
    hub.broadcast([row(7)]); // arrives while the hello/replay is being prepared
    await settle();
    expect(socket.frames.map((f) => `${f.type}:${f.id ?? f.lastEventId ?? ''}`)).toEqual([
      'hello:7',
      'change:3',
      'change:7',
      'synced:7',
    ]);
  });

  it('resume replays in order and does not duplicate rows broadcast during the replay', async () => {
    const { socket, conn } = await connect();
    conn.receive(JSON.stringify({ type: 'resume', lastEventId: 1 }));
    // a live row arrives while the replay query is in flight
    log.push(row(6));
    hub.broadcast([row(6)]);
    await settle();
    hub.broadcast([row(6)]); // and again (a second poke): still once
    expect(socket.of('change').map((f) => f.id)).toEqual([3, 6]);
  });

  it('resets when the id is unknown, another org’s, pruned, or too far behind', async () => {
    const cases: Array<[number, string]> = [
      [99, 'unknown'],
      [2, 'unknown'], // org_b's id
    ];
    for (const [lastEventId, reason] of cases) {
      const { socket, conn } = await connect('org_a', `user_${lastEventId}`);
      conn.receive(JSON.stringify({ type: 'resume', lastEventId }));
      await settle();
      expect(socket.of('reset')[0]).toMatchObject({ reason });
      expect(socket.of('change')).toHaveLength(0);
    }
    log.splice(0, 1); // prune id 1
    const pruned = await connect('org_a', 'user_p');
    pruned.conn.receive(JSON.stringify({ type: 'resume', lastEventId: 1 }));
    await settle();
    expect(pruned.socket.of('reset')[0]).toMatchObject({ reason: 'too_old' });

    log.push(row(10), row(11), row(12), row(13));
    const behind = await connect('org_a', 'user_b');
    behind.conn.receive(JSON.stringify({ type: 'resume', lastEventId: 3 }));
    await settle();
    expect(behind.socket.of('reset')[0]).toMatchObject({ reason: 'too_many', lastEventId: 13 });
  });

  it('backpressure: drops while over the high-water mark, then resets once drained', async () => {
    const slow = await connect('org_a', 'user_slow');
    const fast = await connect('org_a', 'user_fast');
    slow.socket.buffered = 5000;
    hub.broadcast([row(4), row(5)]);
    expect(slow.socket.of('change')).toHaveLength(0);
    expect(fast.socket.of('change').map((f) => f.id)).toEqual([4, 5]);
    expect(hub.stats().dropped).toBe(2);
    slow.socket.buffered = 0;
    hub.broadcast([row(6)]);
    // the reset points past 6: the client refetches state that already includes it
    expect(slow.socket.of('reset')[0]).toMatchObject({ reason: 'backpressure', lastEventId: 6 });
    hub.broadcast([row(7)]);
    expect(slow.socket.of('change').map((f) => f.id)).toEqual([7]);
  });

  it('backpressure: a connection lagging past maxLag is closed with 1013, others unaffected', async () => {
    const slow = await connect('org_a', 'user_slow');
    const fast = await connect('org_a', 'user_fast');
    slow.socket.buffered = 5000;
    hub.broadcast([row(4)]);
    for (let i = 0; i < 6; i++) {
      now += 1000;
      slow.conn.receive(JSON.stringify({ type: 'pong' })); // alive, just not reading
      fast.conn.receive(JSON.stringify({ type: 'pong' }));
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(slow.socket.closedWith?.code).toBe(1013);
    hub.broadcast([row(5)]);
    expect(fast.socket.of('change').map((f) => f.id)).toEqual([4, 5]);
    expect(hub.stats().connections).toBe(1);
  });

  it('heartbeat pings, and closes a connection silent for two periods', async () => {
    const quiet = await connect('org_a', 'user_q');
    const chatty = await connect('org_a', 'user_c');
    for (let i = 0; i < 3; i++) {
      now += 1000;
      chatty.conn.receive(JSON.stringify({ type: 'pong' }));
      await vi.advanceTimersByTimeAsync(1000);
    }
    expect(quiet.socket.closedWith?.code).toBe(4408);
    expect(chatty.socket.closedWith).toBeNull();
    expect(chatty.socket.of('ping').length).toBeGreaterThanOrEqual(2);
  });

  it('closes the sockets of a user whose membership ends (after telling them)', async () => {
    const leaving = await connect('org_a', 'user_leaving');
    const staying = await connect('org_a', 'user_staying');
    hub.broadcast([
      { ...row(8), entity: 'membership', op: 'delete', data: '{"userId":"user_leaving"}' },
    ]);
    expect(leaving.socket.of('change').map((f) => f.id)).toEqual([8]);
    expect(leaving.socket.closedWith?.code).toBe(4403);
    expect(staying.socket.closedWith).toBeNull();
  });

  it('caps connections per user', async () => {
    await connect('org_a', 'user_cap');
    await connect('org_a', 'user_cap');
    expect(hub.canConnect('user_cap')).toBe(false);
    const third = await connect('org_a', 'user_cap');
    expect(third.socket.closedWith?.code).toBe(1008);
    expect(hub.stats().connections).toBe(2);
  });

  it('closes the socket after too many protocol errors', async () => {
    const { socket, conn } = await connect();
    for (let i = 0; i < 10; i++) conn.receive('nope');
    expect(socket.of('error')).toHaveLength(10);
    expect(socket.closedWith?.code).toBe(1008);
  });

  it('close() says 1012 to everyone', async () => {
    const a = await connect('org_a', 'user_x');
    const b = await connect('org_b', 'user_y');
    hub.close();
    expect(a.socket.closedWith?.code).toBe(1012);
    expect(b.socket.closedWith?.code).toBe(1012);
    expect(hub.stats().connections).toBe(0);
  });
});

describe('createHub with a frame window (data batching on the socket)', () => {
  let log: ChangeRow[];
  let hub: Hub;
  let now: number;
  beforeEach(() => {
    vi.useFakeTimers();
    now = 1_000_000;
    log = [row(1)];
    hub = createHub({
      source: memorySource(log),
      highWaterBytes: 1000,
      frameWindowMs: 10,
      now: () => now,
    });
  });
  afterEach(() => {
    hub.close();
    vi.useRealTimers();
  });

  const connect = async (userId: string, socket = new FakeSocket()) => {
    hub.connect(socket, { userId, orgId: 'org_a' });
    await settle();
    return socket;
  };
  /** Frames after the hello as `change:id` / `changes:id,id`. */
  const shape = (socket: FakeSocket) =>
    socket.frames
      .filter((f) => f.type === 'change' || f.type === 'changes')
      .map((f) =>
        f.type === 'change'
          ? `change:${f.id}`
          : `changes:${(f.changes as Array<{ id: number }>).map((c) => c.id).join(',')}`,
      );
  const later = async (ms: number) => {
    now += ms;
    await vi.advanceTimersByTimeAsync(ms);
  };

  it('sends the first change at once and what follows within the window as one frame', async () => {
    const a = await connect('user_a');
    const b = await connect('user_b');
    hub.broadcast([row(2)]);
    expect(shape(a)).toEqual(['change:2']); // leading edge: no added latency when quiet
    await later(2);
    hub.broadcast([row(3)]);
    await later(2);
    hub.broadcast([row(4), row(5)]);
    expect(shape(a)).toEqual(['change:2']); // waiting for the window's end
    await later(6);
    expect(shape(a)).toEqual(['change:2', 'changes:3,4,5']);
    expect(shape(b)).toEqual(shape(a));
    expect(hub.stats().sent).toBe(8);
    // quiet again: the next change is sent at once
    await later(50);
    hub.broadcast([row(6)]);
    expect(shape(a).at(-1)).toBe('change:6');
  });

  it('stretches the window to the last fan-out time when writing took longer than the window', async () => {
    // each write costs 8 ms of the hub's clock: two sockets, a 16 ms fan-out
    class SlowSocket extends FakeSocket {
      override send(text: string) {
        super.send(text);
        now += 8;
      }
    }
    const a = await connect('user_a', new SlowSocket());
    await connect('user_b', new SlowSocket());
    hub.broadcast([row(2)]); // at once, and took 16 ms
    hub.broadcast([row(3)]);
    await later(10); // the 10 ms window alone would have sent it by now
    expect(shape(a)).toEqual(['change:2']);
    await later(6);
    expect(shape(a)).toEqual(['change:2', 'change:3']);
  });

  it('a batch that ends a membership stops at it for that user, and closes the socket', async () => {
    const leaving = await connect('user_leaving');
    const staying = await connect('user_staying');
    hub.broadcast([row(2)]);
    hub.broadcast([
      { ...row(3), entity: 'membership', op: 'delete', data: '{"userId":"user_leaving"}' },
      row(4),
    ]);
    await later(10);
    expect(shape(leaving)).toEqual(['change:2', 'change:3']);
    expect(leaving.closedWith?.code).toBe(4403);
    expect(shape(staying)).toEqual(['change:2', 'changes:3,4']);
  });

  it('a lagging socket gets nothing of the batch; the others get all of it', async () => {
    const slow = await connect('user_slow');
    const fast = await connect('user_fast');
    hub.broadcast([row(2)]);
    slow.buffered = 5000;
    hub.broadcast([row(3), row(4)]);
    await later(10);
    expect(shape(slow)).toEqual(['change:2']);
    expect(shape(fast)).toEqual(['change:2', 'changes:3,4']);
    expect(hub.stats().dropped).toBe(2);
  });

  it('close() drops the window: nothing is sent after it', async () => {
    const a = await connect('user_a');
    hub.broadcast([row(2)]);
    hub.broadcast([row(3)]);
    hub.close();
    await later(20);
    expect(shape(a)).toEqual(['change:2']);
    expect(a.closedWith?.code).toBe(1012);
  });
});
