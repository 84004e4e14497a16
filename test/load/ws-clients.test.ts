import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type WebSocket, WebSocketServer } from 'ws';
import { startWsClients, type WsClientFleet } from '../../load/ws-clients.ts';

/**
 * The client fleet is the measuring instrument of every push figure: it must count
 * what arrived, catch duplicates and reordering, honour the recording start, and a
 * paused socket must really stop reading.
 */
describe('WebSocket client fleet (worker processes)', () => {
  let wss: WebSocketServer | undefined;
  let fleet: WsClientFleet | undefined;
  afterEach(async () => {
    await fleet?.close();
    await new Promise((r) => wss?.close(r));
  });

  async function serve(): Promise<{ url: string; sockets: WebSocket[] }> {
    const sockets: WebSocket[] = [];
    wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    wss.on('connection', (ws) => {
      sockets.push(ws);
      ws.send(JSON.stringify({ type: 'hello', lastEventId: 0 }));
    });
    await new Promise((r) => wss!.once('listening', r));
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/ws`, sockets };
  }

  const change = (id: number, version: number) =>
    JSON.stringify({
      type: 'change',
      id,
      entity: 'user',
      entityId: 'user_1',
      op: 'upsert',
      version,
    });

  async function settle(expected: number) {
    for (let i = 0; i < 100; i++) {
      const { tallies } = await fleet!.collect({ latencies: false });
      if (tallies.reduce((n, t) => n + t.received, 0) >= expected) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('tallies changes per socket (single and batched frames): received, duplicates, out of order; only after record()', async () => {
    const { url, sockets } = await serve();
    fleet = await startWsClients({ url, sockets: 4, processes: 2 });
    expect(fleet.connected).toBe(4);
    const now = Date.now();
    for (const ws of sockets) ws.send(change(1, now - 60_000)); // before recording
    await fleet.record(now);
    for (const ws of sockets) for (const id of [2, 3, 3, 2, 4]) ws.send(change(id, now));
    const batch = `{"type":"changes","changes":[${change(5, now)},${change(6, now)}]}`;
    for (const ws of sockets) ws.send(batch);
    await settle(4 * 7);
    const { latencies, tallies } = await fleet.collect();
    expect(tallies).toHaveLength(4);
    for (const t of tallies) {
      expect(t).toMatchObject({ received: 7, duplicates: 1, outOfOrder: 1 });
    }
    expect(latencies).toHaveLength(28);
    expect(latencies[0]).toBeGreaterThanOrEqual(0);
    expect(latencies[27]).toBeGreaterThanOrEqual(latencies[0]!); // sorted
  });

  it('a paused socket stops reading while the others go on', async () => {
    const { url, sockets } = await serve();
    fleet = await startWsClients({ url, sockets: 3 });
    await fleet.record(0);
    fleet.pause(0);
    await new Promise((r) => setTimeout(r, 100));
    for (const ws of sockets) for (let id = 1; id <= 10; id++) ws.send(change(id, Date.now()));
    await settle(2 * 10);
    await new Promise((r) => setTimeout(r, 100));
    const { tallies } = await fleet.collect({ latencies: false });
    expect(tallies.map((t) => t.received).sort()).toEqual([0, 10, 10]);
  });

  it('names the reason when sockets cannot connect', async () => {
    fleet = await startWsClients({ url: 'ws://127.0.0.1:9/ws', sockets: 2 });
    expect(fleet.connected).toBe(0);
    expect(fleet.failed).toBe(2);
    expect(fleet.firstError).toMatch(/ECONNREFUSED/);
  });
});
