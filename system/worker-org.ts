import { createClient } from '@libsql/client/web';
import { createDatabase, type Database } from './db/database.ts';
import {
  changeById,
  changeLogBounds,
  latestOrgChange,
  orgChangesAfter,
} from './db/queries/changes.ts';
import type { ChangeRow } from './db/schema.ts';
import { clientMessage } from './realtime/client-message.ts';
import { revokedUser } from './realtime/hub.ts';
import {
  changeMessage,
  PROTOCOL,
  type ResetReason,
  type ServerMessage,
} from './realtime/protocol.ts';

/**
 * One Durable Object per organization (binding `ORG_HUB`, `idFromName(orgId)`): the one
 * place every isolate and colo can ask "what has this org committed?", and the org's
 * realtime hub.
 *
 * - Its generation is the id of the org's last change-log row it has read. A Worker that
 *   commits calls `/advance` before it answers; the object reads the org's new rows from
 *   the database, in order, fans them out to its sockets, and moves the generation. The
 *   response caches key every entry by it (levers/cache-versioned.ts): no stale read after
 *   a write, across isolates and colos.
 * - Sockets use the WebSocket Hibernation API: the object may be evicted from memory
 *   while its sockets stay open, so what a socket needs later (user, connection id) rides
 *   in its attachment, and the generation in durable storage. There is no server ping
 *   (`heartbeatMs: 0` in `hello`): the runtime answers protocol pings and a ping timer
 *   would keep the object awake. The protocol is realtime/protocol.ts, as on Node.
 */
interface ObjectState {
  storage: {
    get<T>(key: string): Promise<T | undefined>;
    put(key: string, value: unknown): Promise<void>;
  };
  acceptWebSocket(socket: HibernatableSocket, tags?: string[]): void;
  getWebSockets(tag?: string): HibernatableSocket[];
}

interface HibernatableSocket {
  send(text: string): void;
  close(code?: number, reason?: string): void;
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): unknown;
}

interface Attachment {
  userId: string;
  connectionId: string;
  orgId: string;
  errors: number;
}

const READ_BATCH = 500;
/** Longest replay on resume; more is a `reset` (as the Node hub). */
const MAX_REPLAY = 1000;
/** Sockets per user in one org (the Node hub's default). */
const MAX_CONNECTIONS_PER_USER = 10;
const MAX_CLIENT_ERRORS = 10;

/** Internal paths the Worker calls (never reachable from outside: only the Worker holds the binding). */
export const ORG_PATHS = { generation: '/generation', advance: '/advance', connect: '/connect' };

export class OrgHub {
  #generation: number | undefined;
  /** Sockets replaying a resume, with the live rows held back meanwhile. */
  readonly #syncing = new Map<HibernatableSocket, ChangeRow[]>();
  #sequence = 0;

  constructor(
    private readonly state: ObjectState,
    private readonly env: Record<string, unknown>,
  ) {}

  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const orgId = url.searchParams.get('org');
    if (!orgId) return Response.json({ error: { code: 'invalid_request' } }, { status: 400 });
    switch (url.pathname) {
      case ORG_PATHS.generation:
        return Response.json({ generation: await this.#currentGeneration(orgId) });
      case ORG_PATHS.advance:
        return Response.json({ generation: await this.#advance(orgId) });
      case ORG_PATHS.connect:
        return this.#connect(orgId, url);
      default:
        return Response.json({ error: { code: 'not_found' } }, { status: 404 });
    }
  }

  async webSocketMessage(socket: HibernatableSocket, data: string | ArrayBuffer): Promise<void> {
    const who = socket.deserializeAttachment() as Attachment;
    let json: unknown;
    try {
      json = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data));
    } catch {
      this.#protocolError(socket, who, 'invalid_json', 'frame is not valid JSON');
      return;
    }
    const parsed = clientMessage.safeParse(json);
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      this.#protocolError(
        socket,
        who,
        'unknown_op',
        `unsupported message ${JSON.stringify(type ?? null)}`,
      );
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'ping':
        send(socket, { type: 'pong', t: message.t ?? Date.now() });
        return;
      case 'pong':
        return;
      case 'subscribe':
        if (message.orgId !== who.orgId) {
          this.#protocolError(
            socket,
            who,
            'forbidden',
            'a connection can only follow its own organization',
          );
        } else send(socket, { type: 'subscribed', orgId: who.orgId });
        return;
      case 'resume':
        await this.#resume(socket, who.orgId, message.lastEventId);
        return;
    }
  }

  webSocketClose(socket: HibernatableSocket, code: number, reason: string): void {
    this.#syncing.delete(socket);
    try {
      socket.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  webSocketError(socket: HibernatableSocket): void {
    this.#syncing.delete(socket);
  }

  async #currentGeneration(orgId: string): Promise<number> {
    if (this.#generation !== undefined) return this.#generation;
    let stored = await this.state.storage.get<number>('generation');
    if (stored === undefined) {
      stored = await this.#withDatabase((db) => latestOrgChange(db.db, orgId));
      await this.state.storage.put('generation', stored);
    }
    // another call may have advanced it while this one waited
    this.#generation = Math.max(this.#generation ?? 0, stored);
    return this.#generation;
  }

  /**
   * Reads the org's rows after the generation and fans them out. Calls may overlap (each
   * awaits the database): each sends only rows past the generation at the moment it
   * resumes, so every row goes out once and in order.
   */
  async #advance(orgId: string): Promise<number> {
    let position = await this.#currentGeneration(orgId);
    await this.#withDatabase(async (db) => {
      for (;;) {
        const rows = await orgChangesAfter(db.db, orgId, position, READ_BATCH);
        const fresh = rows.filter((row) => row.id > this.#generation!);
        if (fresh.length > 0) {
          this.#generation = fresh.at(-1)!.id;
          this.#broadcast(fresh);
        }
        position = rows.at(-1)?.id ?? position;
        if (rows.length < READ_BATCH) return;
      }
    });
    await this.state.storage.put('generation', this.#generation);
    return this.#generation!;
  }

  #broadcast(rows: readonly ChangeRow[]): void {
    // each row serialized once, whatever the number of sockets
    const frames = rows.map((row) => ({ row, text: JSON.stringify(changeMessage(row)) }));
    for (const socket of this.state.getWebSockets()) {
      const held = this.#syncing.get(socket);
      if (held) held.push(...rows);
      else sendFrames(socket, frames);
    }
  }

  async #connect(orgId: string, url: URL): Promise<Response> {
    const userId = url.searchParams.get('user');
    if (!userId) return Response.json({ error: { code: 'invalid_request' } }, { status: 400 });
    if (this.state.getWebSockets(userId).length >= MAX_CONNECTIONS_PER_USER) {
      return Response.json(
        { error: { code: 'too_many_connections', message: 'too many open connections' } },
        { status: 429 },
      );
    }
    const resumeParam = url.searchParams.get('lastEventId');
    const resumeFrom = resumeParam === null ? undefined : Number(resumeParam);
    const pair = new (
      globalThis as unknown as { WebSocketPair: new () => HibernatableSocket[] }
    ).WebSocketPair();
    const [client, server] = [pair[0]!, pair[1]!];
    this.#sequence += 1;
    const who: Attachment = {
      userId,
      orgId,
      connectionId: `d${this.#sequence.toString(36)}-${Date.now().toString(36)}`,
      errors: 0,
    };
    this.state.acceptWebSocket(server, [userId]);
    server.serializeAttachment(who);
    await this.#holdingLive(server, async () => {
      const generation = await this.#currentGeneration(orgId);
      send(server, {
        type: 'hello',
        connectionId: who.connectionId,
        orgId,
        lastEventId: generation,
        heartbeatMs: 0,
      });
      return resumeFrom === undefined ? generation : this.#replay(server, orgId, resumeFrom);
    });
    return new Response(null, {
      status: 101,
      webSocket: client,
      headers: { 'sec-websocket-protocol': PROTOCOL },
    } as ResponseInit);
  }

  #resume(socket: HibernatableSocket, orgId: string, lastEventId: number): Promise<void> {
    return this.#holdingLive(socket, () => this.#replay(socket, orgId, lastEventId));
  }

  /**
   * Runs `work` (hello, a replay) with the live rows for `socket` held back, then sends
   * those past the id `work` resolved to: nothing overtakes a replay, nothing goes twice.
   */
  async #holdingLive(socket: HibernatableSocket, work: () => Promise<number>): Promise<void> {
    if (this.#syncing.has(socket)) return;
    this.#syncing.set(socket, []);
    let sent = Number.POSITIVE_INFINITY;
    try {
      sent = await work();
    } catch {
      send(socket, { type: 'error', code: 'internal', message: 'could not read the change log' });
    } finally {
      const held = this.#syncing.get(socket) ?? [];
      this.#syncing.delete(socket);
      sendFrames(
        socket,
        held
          .filter((row) => row.id > sent)
          .map((row) => ({ row, text: JSON.stringify(changeMessage(row)) })),
      );
    }
  }

  /**
   * Replays the org's rows after `lastEventId` up to the generation, then `synced`; or
   * `reset` when the log cannot say (pruned, unknown id, another org's id, too many).
   * Resolves to the last id the socket now has.
   */
  async #replay(socket: HibernatableSocket, orgId: string, lastEventId: number): Promise<number> {
    let reset: ResetReason | null = null;
    const replay = await this.#withDatabase(async (db) => {
      const { oldest } = await changeLogBounds(db.db);
      if (lastEventId > 0) {
        const known = await changeById(db.db, lastEventId);
        if (known === null || known.orgId !== orgId) {
          reset = oldest > lastEventId ? 'too_old' : 'unknown';
          return [];
        }
      } else if (oldest > 1) {
        reset = 'too_old';
        return [];
      }
      const rows = await orgChangesAfter(db.db, orgId, lastEventId, MAX_REPLAY + 1);
      if (rows.length > MAX_REPLAY) reset = 'too_many';
      return rows;
    });
    const generation = this.#generation ?? 0;
    if (reset !== null) {
      send(socket, { type: 'reset', reason: reset, lastEventId: generation });
      return generation;
    }
    let sent = lastEventId;
    // rows past the generation are not fanned out yet: they will be, live
    for (const row of replay) {
      if (row.id > generation) break;
      if (sendText(socket, JSON.stringify(changeMessage(row)))) sent = row.id;
    }
    send(socket, { type: 'synced', lastEventId: sent });
    return sent;
  }

  #protocolError(socket: HibernatableSocket, who: Attachment, code: string, message: string): void {
    const errors = who.errors + 1;
    socket.serializeAttachment({ ...who, errors });
    send(socket, { type: 'error', code, message });
    if (errors >= MAX_CLIENT_ERRORS) socket.close(1008, 'too many protocol errors');
  }

  async #withDatabase<T>(work: (database: Database) => Promise<T>): Promise<T> {
    const database = createDatabase(
      createClient({
        url: String(this.env.DATABASE_URL),
        authToken:
          typeof this.env.DATABASE_AUTH_TOKEN === 'string'
            ? this.env.DATABASE_AUTH_TOKEN
            : undefined,
        intMode: 'number',
      }),
      { sharedWrites: false },
    );
    try {
      return await work(database);
    } finally {
      await database.close();
    }
  }
}

/**
 * Sends change frames in order; a socket must not outlive the membership that authorized
 * it, so it is closed (4403) right after the row that ends its user's membership.
 */
function sendFrames(
  socket: HibernatableSocket,
  frames: ReadonlyArray<{ row: ChangeRow; text: string }>,
): void {
  const { userId } = socket.deserializeAttachment() as Attachment;
  for (const { row, text } of frames) {
    if (!sendText(socket, text)) return;
    if (revokedUser(row) === userId) {
      socket.close(4403, 'membership ended');
      return;
    }
  }
}

function send(socket: HibernatableSocket, message: ServerMessage): boolean {
  return sendText(socket, JSON.stringify(message));
}

function sendText(socket: HibernatableSocket, text: string): boolean {
  try {
    socket.send(text);
    return true;
  } catch {
    return false; // closed meanwhile: the client resumes from its last event id
  }
}
