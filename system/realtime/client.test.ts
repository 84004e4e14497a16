import { describe, expect, it } from 'vitest';
import { connectRealtime, type WebSocketConstructor } from './client.ts';

// The client against a scripted socket: what it does with each server frame.

class ScriptedSocket {
  static last: ScriptedSocket;
  readyState = 1;
  sent: string[] = [];
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {
    ScriptedSocket.last = this;
  }
  send(data: string) {
    this.sent.push(data);
  }
  close() {}
  deliver(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
}

const change = (id: number) => ({
  type: 'change',
  id,
  entity: 'project',
  entityId: `proj_${id}`,
  op: 'upsert',
  version: 1,
  data: {},
  traceparent: null,
});

describe('connectRealtime', () => {
  it('applies a `changes` frame change by change, in order, never one twice', async () => {
    const applied: number[] = [];
    const client = connectRealtime({
      url: 'ws://127.0.0.1:1/ws',
      token: () => 't',
      WebSocket: ScriptedSocket as unknown as WebSocketConstructor,
      onChange: (c) => applied.push(c.id),
    });
    await new Promise((r) => setTimeout(r, 0)); // the token is awaited before connecting
    const socket = ScriptedSocket.last;
    expect(socket.protocols).toEqual(['dataflow.v1', 'bearer.t']);
    socket.deliver({ type: 'hello', connectionId: 'c1', orgId: 'org_a', lastEventId: 1 });
    await client.ready();
    socket.deliver(change(2));
    socket.deliver({ type: 'changes', changes: [change(2), change(3), change(4)] });
    socket.deliver({ type: 'changes', changes: [change(5)] });
    expect(applied).toEqual([2, 3, 4, 5]);
    expect(client.lastEventId()).toBe(5);
    client.close();
  });

  it('closed while its token is on the way: never opens a socket', async () => {
    let opened = 0;
    class Counting extends ScriptedSocket {
      constructor(url: string, protocols: string[]) {
        super(url, protocols);
        opened += 1;
      }
    }
    let release!: (token: string) => void;
    const client = connectRealtime({
      url: 'ws://127.0.0.1:1/ws',
      token: () => new Promise<string>((resolve) => (release = resolve)),
      WebSocket: Counting as unknown as WebSocketConstructor,
    });
    client.close();
    release('t');
    await new Promise((r) => setTimeout(r, 0));
    expect(opened).toBe(0);
  });
});
