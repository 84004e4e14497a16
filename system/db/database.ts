import type { Client, InArgs, InStatement, ResultSet, TransactionMode } from '@libsql/client';
import type { Span } from '@opentelemetry/api';
import { Mutex } from 'async-mutex';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import { type RequestTrace, tracedSpan, UNTRACED, under } from '../trace.ts';
import { createGroupCommit, type GroupCommitOptions } from './group-commit.ts';

/**
 * Runtime-neutral half of the data layer: given any libSQL client (embedded, sqld,
 * Turso, or `@libsql/client/web` on Workers) it returns the drizzle handle the app
 * uses plus plain query counters. The counters are how the harness measures the
 * audit's "multiple round trips": one `execute`, one `batch` or one transaction is
 * one round trip to the database.
 */

/**
 * The drizzle handle. Without drizzle's relational `query` API (the app builds every query
 * with the query builder): making a handle then costs well under a microsecond, against
 * 8-12 µs with the schema's relations extracted, so a request can have its own
 * (`Database.forRequest`).
 */
export type Db = LibSQLDatabase;

export interface DbStats {
  /** Round trips: statements executed alone, batches and interactive transactions. */
  readonly roundTrips: number;
  /** Individual SQL statements, counting every statement inside a batch. */
  readonly statements: number;
}

/** One finished round trip (called after it settles, successful or not). */
export type QueryListener = (event: {
  kind: 'execute' | 'batch' | 'transaction';
  statements: number;
  /** `SELECT users`, `BATCH` …: low-cardinality, no values (a batch's size is `statements`). */
  summary: string;
  durationMs: number;
  ok: boolean;
}) => void;

export interface Database {
  readonly db: Db;
  readonly client: Client;
  /**
   * A handle for one request: the same database, each of its calls (an `execute`, a
   * `batch`, a transaction's statements) also reported to `onCall` with its duration, and
   * its round trips' spans children of `trace.span`. How a request's queries are counted
   * and traced without an async context (on Node 20 an `AsyncLocalStorage` taxes every
   * promise of the process).
   */
  forRequest(request: DbRequest): Db;
  /** The client with its round trips' spans children of `parent` (a stage's span). */
  clientUnder(parent: Span | undefined): Client;
  /** Cumulative counters since the database was opened. */
  stats(): DbStats;
  /** Adds a hook called for each round trip; returns the function that removes it. */
  onQuery(listener: QueryListener): () => void;
  /** Closes the client; resolves once its background work (a WAL checkpointer) has ended. */
  close(): Promise<void>;
}

export interface DbRequest {
  onCall?: ((durationMs: number) => void) | undefined;
  trace?: RequestTrace | undefined;
}

export interface DatabaseOptions {
  /**
   * Runs every call to the database (the recovery lever's deadline and breaker). The
   * write queue is outside it, so a deadline counts database time, not queueing.
   */
  guard?: <T>(operation: () => Promise<T>) => Promise<T>;
  /** Put the SQL text on DB spans (`db.query.text`; parameters are never recorded). */
  traceQueryText?: boolean;
  /** When an idle group commit starts (see `group-commit.ts`). @default at once */
  scheduleCommit?: (start: () => void) => void;
  /** Each group commit: how many write batches it carried (the group-commit size metric). */
  onGroupCommit?: (batches: number) => void;
  /**
   * Concurrent write batches share one transaction (group commit) and writes take turns
   * through one queue. @default true. A Worker passes false: workerd does not let one
   * request finish I/O another request started (a shared commit failed every request but
   * the one that ran it), so each request commits its own writes and sqld orders them.
   */
  sharedWrites?: boolean;
}

export function createDatabase(rawClient: Client, options: DatabaseOptions = {}): Database {
  let roundTrips = 0;
  let statements = 0;
  const listeners = new Set<QueryListener>();
  const record: QueryListener = (event) => {
    roundTrips += 1;
    statements += event.statements;
    for (const listener of listeners) listener(event);
  };
  const clientUnder = countingClients(
    rawClient,
    instrumented(record, options.traceQueryText ?? false),
    options.guard ?? ((operation) => operation()),
    { schedule: options.scheduleCommit, onCommit: options.onGroupCommit },
    options.sharedWrites ?? true,
  );
  const client = clientUnder(undefined);
  const db = drizzle(client);
  const forRequest = ({ onCall, trace = UNTRACED }: DbRequest): Db => {
    const handle = drizzle(onCall || trace.span ? clientUnder(trace.span, onCall) : client);
    requestHandles.set(handle, new RequestHandle(db, onCall, trace, forRequest));
    return handle;
  };
  return {
    db,
    client,
    forRequest,
    clientUnder: (parent) => (parent ? clientUnder(parent) : client),
    stats: () => ({ roundTrips, statements }),
    onQuery(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => rawClient.close(),
  };
}

/**
 * Wraps a client to count round trips (one client per parent span; they share the write
 * queue and the group commit), and makes `batch()` default to a write
 * transaction: drizzle's `db.batch()` passes no mode, libSQL then uses `deferred`,
 * and a deferred transaction that later writes can fail with SQLITE_BUSY at the lock
 * upgrade without waiting for the busy timeout. `BEGIN IMMEDIATE` waits instead.
 *
 * Write transactions from this process also take turns (one in flight at a time).
 * SQLite has one writer anyway; against sqld, 16 concurrent write batches from one
 * process made the server spin on its write lock at 190% CPU until requests timed out,
 * while queueing them here keeps it busy with useful work.
 */
function countingClients(
  inner: Client,
  run: RoundTrip,
  guard: NonNullable<DatabaseOptions['guard']>,
  groupCommit: GroupCommitOptions,
  sharedWrites: boolean,
): (parent: Span | undefined, onCall?: (durationMs: number) => void) => Client {
  const writer = sharedWrites ? new Mutex() : OWN_TURN;
  const write = (stmts: Statement[], parent: Span | undefined) =>
    writer.runExclusive(() =>
      run('batch', stmts, parent, () => guard(() => inner.batch(stmts, 'write'))),
    );
  // concurrent write batches share one transaction (see group-commit.ts); the writer's
  // turn is taken per commit, so interactive transactions still take turns with them
  const groupWrite = sharedWrites
    ? createGroupCommit<Statement, ResultSet, Span>(write, groupCommit)
    : write;
  const shared: SharedWrites = { inner, run, guard, writer, groupWrite };
  return (parent, onCall) =>
    new CountingClient(shared, parent, onCall ? reporting(onCall) : untimed) as unknown as Client;
}

interface SharedWrites {
  inner: Client;
  run: RoundTrip;
  guard: NonNullable<DatabaseOptions['guard']>;
  writer: Pick<Mutex, 'runExclusive' | 'acquire'>;
  groupWrite: (stmts: Statement[], parent: Span | undefined) => Promise<ResultSet[]>;
}

/**
 * A class, not an object literal per request: a request makes one (its handle), and a
 * literal with accessors cost 2 µs to make and to hand to drizzle, against 0.1 µs.
 */
class CountingClient {
  constructor(
    private readonly shared: SharedWrites,
    private readonly parent: Span | undefined,
    private readonly timed: Timed,
  ) {}

  execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
    const { run, guard, inner } = this.shared;
    const stmt = typeof stmtOrSql === 'string' ? { sql: stmtOrSql, args: args ?? [] } : stmtOrSql;
    return this.timed(() =>
      run('execute', [stmt], this.parent, () => guard(() => inner.execute(stmt))),
    );
  }

  batch(stmts: Statement[], mode: TransactionMode = 'write'): Promise<ResultSet[]> {
    const { run, guard, inner, writer, groupWrite } = this.shared;
    const parent = this.parent;
    if (mode === 'write') return this.timed(() => groupWrite(stmts, parent));
    const once = () => run('batch', stmts, parent, () => guard(() => inner.batch(stmts, mode)));
    return this.timed(mode === 'read' ? once : () => writer.runExclusive(once));
  }

  migrate(stmts: InStatement[]): Promise<ResultSet[]> {
    return this.shared.inner.migrate(stmts);
  }

  async transaction(mode: TransactionMode = 'write') {
    const { run, guard, inner, writer } = this.shared;
    const { parent, timed } = this;
    const release = mode === 'read' ? () => {} : await writer.acquire();
    let tx: Awaited<ReturnType<Client['transaction']>>;
    try {
      tx = await timed(() =>
        run('transaction', [`BEGIN ${mode}`], parent, () => guard(() => inner.transaction(mode))),
      );
    } catch (error) {
      release();
      throw error;
    }
    // the turn ends when the transaction does, however it ends
    for (const end of ['commit', 'rollback'] as const) {
      const original = tx[end].bind(tx);
      tx[end] = () => original().finally(release);
    }
    const close = tx.close.bind(tx);
    tx.close = () => {
      close();
      release();
    };
    // Statements inside an interactive transaction are round trips of their own
    // (one HTTP request each against sqld), so count them too.
    const execute = tx.execute.bind(tx);
    const batch = tx.batch.bind(tx);
    tx.execute = (stmt: InStatement) =>
      timed(() => run('execute', [stmt], parent, () => execute(stmt)));
    tx.batch = (stmts: InStatement[]) =>
      timed(() => run('batch', stmts, parent, () => batch(stmts)));
    return tx;
  }

  executeMultiple(sql: string): Promise<void> {
    return this.shared.inner.executeMultiple(sql);
  }
  sync() {
    return this.shared.inner.sync();
  }
  close(): void {
    this.shared.inner.close();
  }
  reconnect() {
    return this.shared.inner.reconnect();
  }
  get closed(): boolean {
    return this.shared.inner.closed;
  }
  get protocol(): string {
    return this.shared.inner.protocol;
  }
}

type Timed = <T>(call: () => Promise<T>) => Promise<T>;
const untimed: Timed = (call) => call();

/** Each call's duration also reported to `onCall` (a request's queries: `forRequest`). */
function reporting(onCall: (durationMs: number) => void): Timed {
  return async (call) => {
    const started = performance.now();
    try {
      return await call();
    } finally {
      onCall(performance.now() - started);
    }
  };
}

type Statement = InStatement | [string, InArgs?];

/** What `forRequest` made a handle for: see `requestHandleOf`. */
export class RequestHandle {
  constructor(
    /** The database's shared handle. */
    readonly shared: Db,
    readonly onCall: ((durationMs: number) => void) | undefined,
    readonly trace: RequestTrace,
    private readonly open: (request: DbRequest) => Db,
  ) {}

  /**
   * A handle of the same request with its round trips' spans under `span` (a stage's).
   * A new one each time, not this one: an entry that referred to its own key would cost
   * the garbage collector an ephemeron cycle per request.
   */
  under(span: Span | undefined): Db {
    return this.open({ onCall: this.onCall, trace: under(this.trace, span) });
  }
}

const requestHandles = new WeakMap<Db, RequestHandle>();

/**
 * For a handle from `forRequest`: the database's shared handle, the request's reporter and
 * trace. What process-wide work (the batching lever's DataLoaders) runs on, and
 * charges to the request that started it.
 */
export function requestHandleOf(db: Db): RequestHandle | undefined {
  return requestHandles.get(db);
}

/** Writes without a shared queue: every caller's turn is its own. */
const OWN_TURN: Pick<Mutex, 'runExclusive' | 'acquire'> = {
  runExclusive: (callback) => Promise.resolve(callback()),
  acquire: async () => () => {},
};
type RoundTrip = <T>(
  kind: Parameters<QueryListener>[0]['kind'],
  stmts: readonly Statement[],
  parent: Span | undefined,
  call: () => Promise<T>,
) => Promise<T>;

/**
 * Each round trip is one `db` stage: a client span with the semantic-convention
 * attributes (when the request is sampled), a timing entry, and the listeners' event.
 */
function instrumented(record: QueryListener, queryText: boolean): RoundTrip {
  return (kind, stmts, parent, call) => {
    const first = sqlOf(stmts[0]);
    // not `BATCH <size>`: group commits make every size from 2 to hundreds, and the summary
    // is a metric label and a span name (the size is `db.operation.batch.size` on the span)
    const summary = stmts.length > 1 ? 'BATCH' : summaryOf(first);
    // a span only: the request's own handle records the time (`forRequest`)
    return tracedSpan(
      parent,
      'db',
      summary,
      async (span) => {
        if (span) {
          if (queryText) span.setAttribute('db.query.text', first);
          if (stmts.length > 1) span.setAttribute('db.operation.batch.size', stmts.length);
          // identical reads (same statement, same parameters) share a fingerprint: how the
          // trace analyzer finds redundant fetches without recording any value
          const only = stmts.length === 1 ? stmts[0] : undefined;
          if (only !== undefined && summary.startsWith('SELECT'))
            span.setAttribute('dataflow.db.fingerprint', fingerprint(only));
        }
        const started = performance.now();
        let ok = false;
        try {
          const result = await call();
          ok = true;
          return result;
        } finally {
          record({
            kind,
            statements: stmts.length,
            summary,
            durationMs: performance.now() - started,
            ok,
          });
        }
      },
      { 'db.system.name': 'sqlite', 'db.query.summary': summary },
    );
  };
}

function sqlOf(stmt: Statement | undefined): string {
  if (stmt === undefined) return '';
  if (typeof stmt === 'string') return stmt;
  return Array.isArray(stmt) ? stmt[0] : stmt.sql;
}

const TABLE = /\b(?:from|into|update|join)\s+["`]?(\w+)/i;
const summaries = new Map<string, string>();

/** `querySummary`, memoized: the app's statements are a small, fixed set (bounded anyway). */
function summaryOf(sql: string): string {
  let summary = summaries.get(sql);
  if (summary === undefined) {
    summary = querySummary(sql);
    if (summaries.size < 1024) summaries.set(sql, summary);
  }
  return summary;
}

/** `SELECT users`, `INSERT projects`, `BEGIN write`: the operation and its first table. */
export function querySummary(sql: string): string {
  const operation = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? 'SQL';
  if (operation === 'BEGIN') return sql.trim();
  const table = TABLE.exec(sql)?.[1];
  return table ? `${operation} ${table}` : operation;
}

/** FNV-1a (32 bit) of the statement and its arguments: equal reads, equal fingerprints. */
function fingerprint(stmt: Statement): string {
  const args = typeof stmt === 'string' ? [] : Array.isArray(stmt) ? stmt[1] : stmt.args;
  let text = sqlOf(stmt);
  try {
    text += `\u0000${JSON.stringify(args ?? [], (_k, v) => (typeof v === 'bigint' ? `${v}n` : v))}`;
  } catch {
    // unserializable arguments (blobs): the statement alone
  }
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}
