import { SpanKind } from '@opentelemetry/api';
import type { ChangeRow } from '../db/schema.ts';
import { STAGE_ATTRIBUTE, startFromTraceparent } from '../trace.ts';
import { clientMessage } from './client-message.ts';
import {
  type ChangeMessage,
  changeMessage,
  type ResetReason,
  type ServerMessage,
} from './protocol.ts';

/**
 * The realtime hub, runtime-neutral: topics per org, resume from the change log,
 * heartbeat, per-connection backpressure. Runtime adapters (the `ws` server on Node,
 * a Durable Object on Workers) hand it sockets that implement `HubSocket`.
 */

export interface HubSocket {
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Bytes queued but not yet written to the network. */
  bufferedAmount(): number;
}

/** What the hub needs from the change log. */
export interface ChangeSource {
  /** One org's changes after `afterId`, in order, at most `limit`. */
  orgChangesAfter(orgId: string, afterId: number, limit: number): Promise<ChangeRow[]>;
  changeById(id: number): Promise<ChangeRow | null>;
  bounds(): Promise<{ newest: number; oldest: number }>;
  latestForOrg(orgId: string): Promise<number>;
}

export interface HubOptions {
  source: ChangeSource;
  /** Ping period; a connection silent for two periods is closed. @default 25000 */
  heartbeatMs?: number;
  /** Above this many buffered bytes a connection stops getting events. @default 1 MiB */
  highWaterBytes?: number;
  /** A connection lagging this long is closed (1013). @default 30000 */
  maxLagMs?: number;
  /** Longest replay on resume; more than that is a `reset`. @default 1000 */
  maxReplay?: number;
  /** @default 10 */
  maxConnectionsPerUser?: number;
  /**
   * Data batching on the socket: an org's first change goes out at once, changes that
   * follow within this many ms wait for the window's end and go out together as one
   * `changes` frame (serialized once for every socket). At 1,000 sockets x 200 events/s
   * a frame per change is 200,000 frames a second, more than the machine can write or
   * its clients read; a window of a few ms cuts that by the events per window. The
   * window stretches to the org's last fan-out time when that is longer: a hub that
   * spends its time writing frames to many sockets sends fewer, bigger ones, so writing
   * takes at most about half of its time and ingest keeps up.
   * 0: every change its own `change` frame. @default 0
   */
  frameWindowMs?: number;
  /** Client protocol errors tolerated before the socket is closed (1008). @default 10 */
  maxClientErrors?: number;
  now?: () => number;
  onError?: (error: unknown) => void;
  /** Each change fanned out: commit -> fan-out lag and how many sockets it went to. */
  onBroadcast?: (event: { lagMs: number; recipients: number }) => void;
}

export interface HubStats {
  connections: number;
  /** Bytes queued in this process for all sockets (what a slow client can pile up). */
  bufferedBytes: number;
  sent: number;
  dropped: number;
  resets: number;
}

export interface Connection {
  readonly id: string;
  /** Feed one text frame received from the client. */
  receive(text: string): void;
  /** The socket closed (by either side). */
  closed(): void;
}

export interface Hub {
  /** Whether the user may open one more connection (checked before upgrade). */
  canConnect(userId: string): boolean;
  /**
   * Attach a socket. With `resumeFrom` (the client's last event id, given at connect),
   * the hello is followed by the missed events and `synced`, or by `reset`, before any
   * live event: there is no window in which a live event could overtake the replay.
   */
  connect(
    socket: HubSocket,
    who: { userId: string; orgId: string },
    options?: { resumeFrom?: number | undefined },
  ): Connection;
  /** Committed change-log rows, in id order (from the publisher). */
  broadcast(rows: readonly ChangeRow[]): void;
  stats(): HubStats;
  /** Graceful shutdown: close every socket with 1012 so clients reconnect elsewhere. */
  close(): void;
}

interface ConnState {
  id: string;
  socket: HubSocket;
  userId: string;
  orgId: string;
  /** Highest change id sent (or skipped by a reset) on this connection. */
  lastSentId: number;
  /** Hello/resume work queued or running; while > 0, live rows wait in `pending`. */
  syncs: number;
  pending: ChangeRow[];
  /** Serializes hello/resume work per connection. */
  queue: Promise<void>;
  laggingSince: number | null;
  lastSeen: number;
  errors: number;
  open: boolean;
}

/** The user whose access to the row's org this change ends, if any. */
export function revokedUser(row: ChangeRow): string | null {
  if (row.op !== 'delete') return null;
  if (row.entity === 'user') return row.entityId;
  if (row.entity === 'membership') {
    try {
      const data = JSON.parse(row.data) as { userId?: unknown };
      return typeof data.userId === 'string' ? data.userId : null;
    } catch {
      return null;
    }
  }
  return null;
}

export function createHub(options: HubOptions): Hub {
  const heartbeatMs = options.heartbeatMs ?? 25_000;
  const highWater = options.highWaterBytes ?? 1024 * 1024;
  const maxLagMs = options.maxLagMs ?? 30_000;
  const maxReplay = options.maxReplay ?? 1000;
  const maxPerUser = options.maxConnectionsPerUser ?? 10;
  const maxClientErrors = options.maxClientErrors ?? 10;
  const frameWindowMs = options.frameWindowMs ?? 0;
  const now = options.now ?? Date.now;
  const onError = options.onError ?? (() => {});
  const source = options.source;

  const topics = new Map<string, Set<ConnState>>();
  const perUser = new Map<string, number>();
  /** Newest change id broadcast per org: where a reset tells the client to continue. */
  const orgHead = new Map<string, number>();
  const stats = { sent: 0, dropped: 0, resets: 0 };
  /** Per org: changes waiting for the window's end, when the org's last frame went, the window. */
  const outboxes = new Map<
    string,
    {
      rows: ChangeRow[];
      timer: ReturnType<typeof setTimeout> | null;
      lastFlush: number;
      windowMs: number;
    }
  >();
  let sequence = 0;

  const heartbeat = setInterval(() => {
    const t = now();
    for (const conns of topics.values()) {
      for (const conn of conns) {
        if (t - conn.lastSeen > 2 * heartbeatMs) {
          // half-open: the peer vanished without a close
          closeConn(conn, 4408, 'heartbeat timeout');
          continue;
        }
        checkLag(conn, t);
        write(conn, { type: 'ping', t });
      }
    }
  }, heartbeatMs);
  (heartbeat as { unref?: () => void }).unref?.();

  function write(conn: ConnState, message: ServerMessage): boolean {
    return writeText(conn, JSON.stringify(message));
  }

  function writeText(conn: ConnState, text: string): boolean {
    if (!conn.open) return false;
    try {
      conn.socket.send(text);
      return true;
    } catch (error) {
      onError(error);
      closeConn(conn, 1011, 'send failed');
      return false;
    }
  }

  function closeConn(conn: ConnState, code: number, reason: string): void {
    if (!conn.open) return;
    conn.open = false;
    forget(conn);
    try {
      conn.socket.close(code, reason);
    } catch {
      // already closing
    }
  }

  function forget(conn: ConnState): void {
    const conns = topics.get(conn.orgId);
    if (conns?.delete(conn)) {
      if (conns.size === 0) {
        topics.delete(conn.orgId);
        const box = outboxes.get(conn.orgId);
        if (box?.timer) clearTimeout(box.timer);
        outboxes.delete(conn.orgId);
      }
      const n = (perUser.get(conn.userId) ?? 1) - 1;
      if (n <= 0) perUser.delete(conn.userId);
      else perUser.set(conn.userId, n);
    }
  }

  /** Backpressure: a lagging connection gets a reset once it drains, or is closed. */
  function checkLag(conn: ConnState, t: number): void {
    if (conn.laggingSince === null) return;
    if (conn.socket.bufferedAmount() < highWater / 4) {
      conn.laggingSince = null;
      reset(conn, 'backpressure');
    } else if (t - conn.laggingSince > maxLagMs) {
      closeConn(conn, 1013, 'slow consumer');
    }
  }

  function reset(conn: ConnState, reason: ResetReason): void {
    const head = Math.max(conn.lastSentId, orgHead.get(conn.orgId) ?? 0);
    conn.lastSentId = head;
    stats.resets += 1;
    write(conn, { type: 'reset', reason, lastEventId: head });
  }

  function sendChange(conn: ConnState, row: ChangeRow): void {
    if (row.id <= conn.lastSentId) return; // already sent by a replay
    if (conn.laggingSince !== null) {
      stats.dropped += 1;
      checkLag(conn, now());
      return;
    }
    if (conn.socket.bufferedAmount() > highWater) {
      conn.laggingSince = now();
      stats.dropped += 1;
      return;
    }
    const frame = frameOf(row);
    if (writeText(conn, frame.text)) {
      conn.lastSentId = row.id;
      stats.sent += 1;
    }
  }

  /**
   * A row is serialized once, however many sockets it goes to: with 1,000 subscribers
   * per-socket JSON.stringify was the hub's largest cost.
   */
  const frames = new WeakMap<ChangeRow, { message: ChangeMessage; text: string }>();
  function frameOf(row: ChangeRow): { message: ChangeMessage; text: string } {
    let frame = frames.get(row);
    if (frame === undefined) {
      const message = changeMessage(row);
      frame = { message, text: JSON.stringify(message) };
      frames.set(row, frame);
    }
    return frame;
  }

  /** Several changes as one `changes` frame, from the rows' own serialized frames. */
  function batchText(rows: readonly ChangeRow[]): string {
    return `{"type":"changes","changes":[${rows.map((r) => frameOf(r).text).join(',')}]}`;
  }

  /**
   * Sends an org's rows to every socket of the org: one frame for all of them where the
   * socket is in step (live, not lagging, nothing of the rows sent yet, not losing its
   * access in them); otherwise row by row, which skips, drops or stops at a revocation.
   */
  function fanOut(orgId: string, rows: readonly ChangeRow[]): void {
    const conns = topics.get(orgId);
    if (!conns) return;
    const spans = rows.map((row) =>
      startFromTraceparent('realtime.broadcast', row.traceContext, SpanKind.PRODUCER, {
        [STAGE_ATTRIBUTE]: 'realtime',
        'realtime.recipients': conns.size,
      }),
    );
    const revoked = new Set<string>();
    for (const row of rows) {
      const user = revokedUser(row);
      if (user !== null) revoked.add(user);
    }
    const first = rows[0]!;
    const last = rows.at(-1)!;
    const batch = rows.length > 1 ? batchText(rows) : null;
    for (const conn of [...conns]) {
      if (conn.syncs > 0) {
        conn.pending.push(...rows);
      } else if (
        batch !== null &&
        !revoked.has(conn.userId) &&
        first.id > conn.lastSentId &&
        conn.laggingSince === null &&
        conn.socket.bufferedAmount() <= highWater
      ) {
        if (writeText(conn, batch)) {
          conn.lastSentId = last.id;
          stats.sent += rows.length;
        }
      } else {
        for (const row of rows) {
          sendChange(conn, row);
          if (revokedUser(row) === conn.userId) break;
        }
      }
      // a socket must not outlive the membership that authorized it
      if (revoked.has(conn.userId)) closeConn(conn, 4403, 'membership ended');
    }
    const t = now();
    for (const span of spans) span?.end();
    for (const row of rows) {
      options.onBroadcast?.({ lagMs: t - row.createdAt, recipients: conns.size });
    }
  }

  function flush(orgId: string): void {
    const box = outboxes.get(orgId);
    if (!box) return;
    box.timer = null;
    const rows = box.rows;
    box.rows = [];
    const started = now();
    if (rows.length > 0) fanOut(orgId, rows);
    // the window starts when the frame is written, and is at least as long as writing it
    // took: under load what arrived meanwhile goes out together, so frames per second
    // fall as the load grows
    box.lastFlush = now();
    box.windowMs = Math.max(frameWindowMs, box.lastFlush - started);
  }

  /**
   * Runs hello/resume work with live rows held back (from this very moment, not from
   * when the work starts), then flushes what arrived meanwhile.
   */
  function synced(conn: ConnState, work: () => Promise<void>): void {
    conn.syncs += 1;
    conn.queue = conn.queue.then(async () => {
      try {
        if (conn.open) await work();
      } catch (error) {
        onError(error);
        write(conn, { type: 'error', code: 'internal', message: 'could not read the change log' });
      } finally {
        conn.syncs -= 1;
        if (conn.syncs === 0) {
          const pending = conn.pending;
          conn.pending = [];
          for (const row of pending) sendChange(conn, row);
        }
      }
    });
  }

  /** Replays what the org missed after `lastEventId`; returns false when it had to reset. */
  async function resume(conn: ConnState, lastEventId: number): Promise<boolean> {
    const { oldest } = await source.bounds();
    if (lastEventId > 0) {
      const known = await source.changeById(lastEventId);
      if (known === null || known.orgId !== conn.orgId) {
        // pruned, never existed, or another org's id: the client must refetch
        reset(conn, oldest > lastEventId ? 'too_old' : 'unknown');
        return false;
      }
    } else if (oldest > 1) {
      reset(conn, 'too_old');
      return false;
    }
    const rows = await source.orgChangesAfter(conn.orgId, lastEventId, maxReplay + 1);
    if (rows.length > maxReplay) {
      reset(conn, 'too_many');
      return false;
    }
    conn.lastSentId = lastEventId;
    for (const row of rows) sendChange(conn, row);
    return true;
  }

  function handle(conn: ConnState, text: string): void {
    conn.lastSeen = now();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      protocolError(conn, 'invalid_json', 'frame is not valid JSON');
      return;
    }
    const parsed = clientMessage.safeParse(json);
    if (!parsed.success) {
      const type = (json as { type?: unknown } | null)?.type;
      protocolError(conn, 'unknown_op', `unsupported message ${JSON.stringify(type ?? null)}`);
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'ping':
        write(conn, { type: 'pong', t: message.t ?? now() });
        return;
      case 'pong':
        return;
      case 'subscribe':
        if (message.orgId !== conn.orgId) {
          protocolError(conn, 'forbidden', 'a connection can only follow its own organization');
          return;
        }
        write(conn, { type: 'subscribed', orgId: conn.orgId });
        return;
      case 'resume':
        synced(conn, async () => {
          if (await resume(conn, message.lastEventId)) {
            write(conn, { type: 'synced', lastEventId: conn.lastSentId });
          }
        });
        return;
    }
  }

  function protocolError(conn: ConnState, code: string, message: string): void {
    conn.errors += 1;
    write(conn, { type: 'error', code, message });
    if (conn.errors >= maxClientErrors) closeConn(conn, 1008, 'too many protocol errors');
  }

  const hub: Hub = {
    canConnect: (userId) => (perUser.get(userId) ?? 0) < maxPerUser,

    connect(socket, who, connectOptions) {
      sequence += 1;
      const conn: ConnState = {
        id: `c${sequence.toString(36)}-${now().toString(36)}`,
        socket,
        userId: who.userId,
        orgId: who.orgId,
        lastSentId: 0,
        syncs: 0,
        pending: [],
        queue: Promise.resolve(),
        laggingSince: null,
        lastSeen: now(),
        errors: 0,
        open: true,
      };
      if (!hub.canConnect(who.userId)) {
        conn.open = false;
        socket.close(1008, 'too many connections');
        return { id: conn.id, receive() {}, closed() {} };
      }
      perUser.set(who.userId, (perUser.get(who.userId) ?? 0) + 1);
      let conns = topics.get(who.orgId);
      if (!conns) {
        conns = new Set();
        topics.set(who.orgId, conns);
      }
      conns.add(conn);
      const resumeFrom = connectOptions?.resumeFrom;
      synced(conn, async () => {
        const latest = Math.max(await source.latestForOrg(who.orgId), orgHead.get(who.orgId) ?? 0);
        conn.lastSentId = latest;
        write(conn, {
          type: 'hello',
          connectionId: conn.id,
          orgId: who.orgId,
          lastEventId: latest,
          heartbeatMs,
        });
        if (resumeFrom !== undefined && (await resume(conn, resumeFrom))) {
          write(conn, { type: 'synced', lastEventId: conn.lastSentId });
        }
      });
      return {
        id: conn.id,
        receive: (text) => {
          if (conn.open) handle(conn, text);
        },
        closed: () => {
          conn.open = false;
          forget(conn);
        },
      };
    },

    broadcast(rows) {
      const touched = new Set<string>();
      for (const row of rows) {
        orgHead.set(row.orgId, row.id);
        if (!topics.has(row.orgId)) continue;
        if (frameWindowMs <= 0) {
          fanOut(row.orgId, [row]);
          continue;
        }
        let box = outboxes.get(row.orgId);
        if (!box) {
          box = {
            rows: [],
            timer: null,
            lastFlush: Number.NEGATIVE_INFINITY,
            windowMs: frameWindowMs,
          };
          outboxes.set(row.orgId, box);
        }
        box.rows.push(row);
        touched.add(row.orgId);
      }
      for (const orgId of touched) {
        const box = outboxes.get(orgId)!;
        if (box.timer !== null) continue; // the window's end sends it
        const wait = box.lastFlush + box.windowMs - now();
        if (wait <= 0) flush(orgId);
        else box.timer = setTimeout(() => flush(orgId), wait);
      }
    },

    stats() {
      let connections = 0;
      let bufferedBytes = 0;
      for (const conns of topics.values()) {
        connections += conns.size;
        for (const conn of conns) bufferedBytes += conn.socket.bufferedAmount();
      }
      return { connections, bufferedBytes, ...stats };
    },

    close() {
      clearInterval(heartbeat);
      // what waits in a window is not lost: clients resume from their last event id
      for (const box of outboxes.values()) if (box.timer) clearTimeout(box.timer);
      outboxes.clear();
      for (const conns of [...topics.values()]) {
        for (const conn of [...conns]) closeConn(conn, 1012, 'service restart');
      }
    },
  };
  return hub;
}
