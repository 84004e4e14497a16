import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createClient } from '@libsql/client';
import { createDatabase, type Database, type DatabaseOptions } from './database.ts';
import { createEmbeddedClient } from './embedded-client.ts';

/**
 * The one client factory (Node). `DATABASE_URL` picks the backend:
 * - `file:path.db`      embedded libSQL with reused prepared statements (`embedded-client.ts`),
 *                       WAL journal and a busy timeout
 * - `:memory:`          embedded, in memory (tests)
 * - `http(s)://`, `libsql://`, `ws(s)://`   sqld or Turso (`@libsql/client`), with `DATABASE_AUTH_TOKEN`
 */
export interface OpenDatabaseOptions {
  url: string;
  authToken?: string | undefined;
  /** Busy timeout for embedded databases, in milliseconds. */
  busyTimeoutMs?: number | undefined;
  /** Wraps every database call (the recovery lever). */
  guard?: DatabaseOptions['guard'];
  /** Record SQL text on DB spans. @default false */
  traceQueryText?: boolean | undefined;
  /** Who checkpoints the WAL of a `file:` database (`embedded-client.ts`). @default 'background' */
  walCheckpoint?: 'background' | 'inline' | undefined;
  /** The background checkpointer stopped (the automatic checkpoint is back on). */
  onCheckpointFailure?: ((error: Error) => void) | undefined;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const kind = databaseKind(options.url);
  if (kind === 'file') mkdirSync(dirname(filePath(options.url)), { recursive: true });
  const client =
    kind === 'remote'
      ? createClient({
          url: options.url,
          authToken: options.authToken,
          intMode: 'number',
          fetch: uncompressedFetch,
        })
      : // WAL journal, synchronous=NORMAL, and the checkpoint off the event loop (file:)
        createEmbeddedClient({
          path: kind === 'memory' ? ':memory:' : filePath(options.url),
          busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
          walCheckpoint: options.walCheckpoint ?? 'background',
          onCheckpointFailure: options.onCheckpointFailure,
        });
  return createDatabase(client, {
    guard: options.guard,
    traceQueryText: options.traceQueryText,
    // an embedded commit is synchronous: wait one event-loop turn so concurrent writes join it
    scheduleCommit: kind === 'remote' ? undefined : setImmediate,
  });
}

/**
 * `fetch` for the sqld/Turso driver that asks for uncompressed responses. By default
 * fetch sends `accept-encoding: gzip`, so sqld gzips every response and undici inflates
 * it: a zlib stream per round trip on both sides, for answers of a few kilobytes. Against
 * a local sqld that cost more CPU than the round trip (a 24-statement write batch and a
 * read: 4.2-6.2 ms of client CPU with gzip, 2.3-3.5 ms without, same run).
 */
function uncompressedFetch(request: Request): Promise<Response> {
  request.headers.set('accept-encoding', 'identity');
  return fetch(request);
}

export type DatabaseKind = 'file' | 'memory' | 'remote';

export function databaseKind(url: string): DatabaseKind {
  if (url === ':memory:' || url.startsWith('file::memory:')) return 'memory';
  if (url.startsWith('file:')) return 'file';
  if (/^(https?|libsql|wss?):\/\//.test(url)) return 'remote';
  throw new TypeError(
    `DATABASE_URL must start with file:, :memory:, http(s)://, libsql:// or ws(s)://; got ${JSON.stringify(url.split('?')[0])}`,
  );
}

/** `file:a/b.db?x=1` -> `a/b.db`; `file:///abs/b.db` -> `/abs/b.db`. */
function filePath(url: string): string {
  const path = url.slice('file:'.length).split('?')[0] ?? '';
  return path.startsWith('//') ? path.replace(/^\/\/[^/]*/, '') : path;
}
