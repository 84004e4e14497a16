import type { Server } from 'node:http';
import type { SessionVerifier } from '../auth/verifier.ts';
import type { Database } from '../db/database.ts';
import type { LoadersFactory } from '../db/loaders.ts';
import type { ChangeRow } from '../db/schema.ts';
import { type ChangePublisher, type ChangeSink, createChangePublisher } from '../sync/publisher.ts';
import { createUpgradeAuthorizer } from './authorize.ts';
import { changeSource } from './change-source.ts';
import { createHub, type Hub, type HubOptions } from './hub.ts';
import { attachRealtime } from './node-ws.ts';
import { type ChangeNotifier, redisNotifier, singleProcess } from './redis-fanout.ts';

/**
 * The change flow on Node, as one subsystem: commit -> change log -> publisher ->
 * (cache invalidation, then) the hub -> `ws` sockets, with Redis pub/sub waking the
 * other processes when there are several.
 */
export interface NodeRealtimeOptions {
  database: Database;
  hub: Omit<HubOptions, 'source'>;
  /** Runs before the push: a client refetching after a push never reads stale. */
  invalidate: ChangeSink;
  pollIntervalMs: number;
  /** Cross-process wake-ups; unset: a single process. */
  redisUrl?: string | undefined;
  onError: (what: string) => (error: unknown) => void;
}

export interface NodeRealtime {
  readonly hub: Hub;
  readonly publisher: ChangePublisher;
  /**
   * After a local commit: wake the other processes, and resolve once this one has
   * invalidated and pushed (the write answers after that). `changes` are the rows the
   * commit appended: no read of the log when nothing sits between them and the last.
   */
  committed(changes: readonly ChangeRow[]): Promise<void>;
  /** `GET /ws` on `server`; its `close()` sends 1012 to every socket (clients reconnect). */
  attach(
    server: Server,
    options: {
      sessions: SessionVerifier;
      loaders: LoadersFactory;
      allowedOrigins: readonly string[];
      maxFrameBytes: number;
    },
  ): { close(): void };
  /** Stops the publisher and the wake-ups. */
  close(): Promise<void>;
}

export async function startNodeRealtime(options: NodeRealtimeOptions): Promise<NodeRealtime> {
  const { database } = options;
  const hub = createHub({ ...options.hub, source: changeSource(database.db) });
  const publisher = createChangePublisher({
    database,
    invalidate: options.invalidate,
    deliver: (rows) => hub.broadcast(rows),
    pollIntervalMs: options.pollIntervalMs,
    onError: options.onError('change publisher failed; retrying on the next poke'),
  });
  await publisher.start();
  let notifier: ChangeNotifier = singleProcess;
  try {
    if (options.redisUrl) {
      notifier = await redisNotifier(
        options.redisUrl,
        () => publisher.poke(),
        options.onError('redis fan-out error'),
      );
    }
  } catch (error) {
    publisher.stop();
    throw error;
  }
  return {
    hub,
    publisher,
    committed(changes) {
      notifier.notify();
      return publisher.handOn(changes);
    },
    attach(server, attach) {
      attachRealtime(server, {
        hub,
        maxFrameBytes: attach.maxFrameBytes,
        authorize: createUpgradeAuthorizer({
          sessions: attach.sessions,
          loaders: attach.loaders(database.db),
          allowedOrigins: attach.allowedOrigins,
          hub,
        }),
      });
      return { close: () => hub.close() };
    },
    async close() {
      publisher.stop();
      hub.close();
      await notifier.close();
    },
  };
}
