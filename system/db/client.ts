import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Client, createClient } from '@libsql/client';
import { type Dispatcher, request } from 'undici';
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
  /** Each group commit: how many write batches it carried. */
  onGroupCommit?: ((batches: number) => void) | undefined;
}

export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const kind = databaseKind(options.url);
  if (kind === 'file') mkdirSync(dirname(filePath(options.url)), { recursive: true });
  const database = (client: Client) =>
    createDatabase(client, {
      guard: options.guard,
      traceQueryText: options.traceQueryText,
      // wait one event-loop turn so concurrent writes join the first commit: an embedded
      // commit is synchronous (nothing could queue during it), and a sqld round trip costs
      // far more CPU than a turn (ingest into sqld: 4 paired A/B rounds, +0-9% events/s)
      scheduleCommit: setImmediate,
      onGroupCommit: options.onGroupCommit,
    });
  if (kind === 'remote') {
    return database(
      createClient({
        url: options.url,
        authToken: options.authToken,
        intMode: 'number',
        fetch: driverFetch,
      }),
    );
  }
  // WAL journal, synchronous=NORMAL, and the checkpoint off the event loop (file:)
  const embedded = createEmbeddedClient({
    path: kind === 'memory' ? ':memory:' : filePath(options.url),
    busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
    walCheckpoint: options.walCheckpoint ?? 'background',
    onCheckpointFailure: options.onCheckpointFailure,
  });
  const opened = database(embedded);
  return {
    ...opened,
    // a process that exits ends its worker threads wherever they are: one stopped inside
    // the libsql addon (its last checkpoint) aborts the whole process with a neon panic
    // (SIGABRT instead of exit 0 after SIGTERM), so closing waits for the checkpointer
    async close() {
      await opened.close();
      await embedded.checkpointer?.stop();
    },
  };
}

/**
 * The sqld/Turso driver's HTTP, through undici's `request` instead of `fetch`. The driver
 * hands over a `Request` and reads a `Response`; in between, `fetch` runs the whole
 * Fetch algorithm, streams both bodies through web streams and asks for gzip (so sqld
 * gzipped every answer and a zlib stream inflated it). Against a local sqld, one
 * 24-statement write batch plus a read cost 4.2-6.2 ms of client CPU through the
 * default `fetch`, 2.2-5.2 ms uncompressed, 1.4-2.4 ms through `request` (interleaved
 * passes, same run). No `accept-encoding` is sent, so answers come uncompressed.
 */
export async function driverFetch(input: Request): Promise<Response> {
  const body =
    input.method === 'GET' || input.method === 'HEAD'
      ? null
      : Buffer.from(await input.arrayBuffer());
  const answer = await request(input.url, {
    method: input.method as Dispatcher.HttpMethod,
    headers: Object.fromEntries(input.headers),
    body,
  });
  const headers = new Headers();
  for (const [name, value] of Object.entries(answer.headers)) {
    if (Array.isArray(value)) for (const item of value) headers.append(name, item);
    else if (value !== undefined) headers.set(name, value);
  }
  const bytes = await answer.body.arrayBuffer();
  const empty = answer.statusCode === 204 || answer.statusCode === 205 || answer.statusCode === 304;
  return new Response(empty ? null : bytes, { status: answer.statusCode, headers });
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
