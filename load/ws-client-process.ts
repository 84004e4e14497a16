import { WebSocket } from 'ws';
import { mintSessionToken } from '../fixtures/auth/token.ts';
import { BEARER_PROTOCOL_PREFIX, PROTOCOL } from '../system/realtime/protocol.ts';
import type { FleetCommand, FleetReply, SocketTally } from './ws-clients.ts';

/**
 * One process of the WebSocket client fleet (`ws-clients.ts` forks it): it opens its
 * share of the sockets and times every change frame, so the generator does not share
 * a core's event loop with the server or the sender. A frame is read without a JSON
 * parse (the fields it needs are at known keys): at 1,000 sockets x 200 events/s the
 * fleet reads 200,000 frames a second, and parsing them would make the fleet the
 * bottleneck of the figure it measures.
 */

const ID = Buffer.from('"id":');
const VERSION = Buffer.from('"version":');
const CHANGE = Buffer.from('{"type":"change",');
const CHANGES = Buffer.from('{"type":"changes"');
const PING = Buffer.from('{"type":"ping"');

/** The unsigned integer that starts at `at` (digits only; the frame is ours). */
function integerAt(buf: Buffer, at: number): number {
  let n = 0;
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}

function fieldOf(buf: Buffer, key: Buffer): number {
  const at = buf.indexOf(key);
  return at < 0 ? Number.NaN : integerAt(buf, at + key.length);
}

interface Client {
  ws: WebSocket;
  lastId: number;
  tally: SocketTally;
}

const clients: Client[] = [];
let recordFromMs = Number.POSITIVE_INFINITY;
let latencies = new Float64Array(1 << 16);
let recorded = 0;
/** Where the current round's latencies start (`collect` with `sinceLastRound`). */
let roundStart = 0;

function record(ms: number) {
  if (recorded === latencies.length) {
    const bigger = new Float64Array(latencies.length * 2);
    bigger.set(latencies);
    latencies = bigger;
  }
  latencies[recorded++] = ms;
}

function count(client: Client, id: number, version: number, receivedAt: number) {
  if (id === client.lastId) client.tally.duplicates += 1;
  else if (id < client.lastId) client.tally.outOfOrder += 1;
  else client.lastId = id;
  if (version >= recordFromMs) {
    client.tally.received += 1;
    record(receivedAt - version);
  }
}

function onFrame(client: Client, buf: Buffer) {
  const receivedAt = performance.timeOrigin + performance.now();
  if (buf.indexOf(CHANGE) === 0) {
    count(client, fieldOf(buf, ID), fieldOf(buf, VERSION), receivedAt);
  } else if (buf.indexOf(CHANGES) === 0) {
    // a batch is one frame for several changes: parsing it is rare enough
    const { changes } = JSON.parse(buf.toString()) as {
      changes: Array<{ id: number; version: number }>;
    };
    for (const c of changes) count(client, c.id, c.version, receivedAt);
  } else if (buf.indexOf(PING) === 0) {
    client.ws.send('{"type":"pong"}');
  } else if (buf.indexOf('{"type":"reset"') === 0) {
    client.tally.resets += 1;
  }
}

function open(url: string, token: string | null): Promise<Client> {
  return new Promise((resolve, reject) => {
    const protocols = token === null ? [PROTOCOL] : [PROTOCOL, `${BEARER_PROTOCOL_PREFIX}${token}`];
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false });
    const client: Client = {
      ws,
      lastId: 0,
      tally: { received: 0, duplicates: 0, outOfOrder: 0, resets: 0, closed: 0 },
    };
    let hello = false;
    ws.on('message', (data: Buffer, isBinary) => {
      if (isBinary) return;
      if (!hello) {
        hello = true;
        resolve(client);
        return;
      }
      onFrame(client, data);
    });
    ws.on('close', (code) => {
      if (!hello) reject(new Error(`closed before hello (${code})`));
      else client.tally.closed += 1;
    });
    ws.on('unexpected-response', (_req, res) => {
      reject(new Error(`upgrade refused: HTTP ${res.statusCode}`));
      ws.terminate();
    });
    ws.on('error', (error) => reject(error));
  });
}

async function connect(command: Extract<FleetCommand, { type: 'connect' }>): Promise<FleetReply> {
  const { url, sockets, auth } = command;
  let failed = 0;
  let firstError: string | null = null;
  let next = 0;
  const worker = async () => {
    while (next < sockets) {
      const i = next++;
      const member = auth?.members[i];
      try {
        const token = member
          ? await mintSessionToken({
              privateKeyPem: auth!.privateKeyPem,
              userId: member.userId,
              orgId: member.orgId,
            })
          : null;
        clients.push(await open(url, token));
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  // a bounded number of handshakes in flight, as a real fleet of browsers would
  await Promise.all(Array.from({ length: 32 }, worker));
  return { type: 'ready', connected: clients.length, failed, firstError };
}

function send(reply: FleetReply) {
  process.send?.(reply);
}

process.on('message', (command: FleetCommand) => {
  switch (command.type) {
    case 'connect':
      void connect(command).then(send);
      return;
    case 'record':
      recordFromMs = command.fromMs;
      send({ type: 'recording' });
      return;
    case 'pause':
      clients[command.index]?.ws.pause();
      return;
    case 'collect': {
      const tallies = clients.map((c) => c.tally);
      const from = command.sinceLastRound ? roundStart : 0;
      if (command.sinceLastRound) roundStart = recorded;
      const recordedSoFar = command.latencies
        ? latencies.slice(from, recorded)
        : new Float64Array(0);
      send({ type: 'collected', latencies: recordedSoFar, tallies });
      return;
    }
    case 'close':
      for (const c of clients) c.ws.terminate();
      process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));
