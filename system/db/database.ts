import type { Client, InArgs, InStatement, ResultSet, TransactionMode } from '@libsql/client';
import { Mutex } from 'async-mutex';
import { drizzle, type LibSQLDatabase } from 'drizzle-orm/libsql';
import * as schema from './schema.ts';

/**
 * Runtime-neutral half of the data layer: given any libSQL client (embedded, sqld,
 * Turso, or `@libsql/client/web` on Workers) it returns the drizzle handle the app
 * uses plus plain query counters. The counters are how the harness measures the
 * audit's "multiple round trips": one `execute`, one `batch` or one transaction is
 * one round trip to the database.
 */

export type Db = LibSQLDatabase<typeof schema>;

export interface DbStats {
  /** Round trips: statements executed alone, batches and interactive transactions. */
  readonly roundTrips: number;
  /** Individual SQL statements, counting every statement inside a batch. */
  readonly statements: number;
}

export type QueryListener = (event: {
  kind: 'execute' | 'batch' | 'transaction';
  statements: number;
}) => void;

export interface Database {
  readonly db: Db;
  readonly client: Client;
  /** Cumulative counters since the database was opened. */
  stats(): DbStats;
  /** Adds a hook called for each round trip; returns the function that removes it. */
  onQuery(listener: QueryListener): () => void;
  close(): void;
}

export interface DatabaseOptions {
  /**
   * Runs every call to the database (the recovery lever's deadline and breaker). The
   * write queue is outside it, so a deadline counts database time, not queueing.
   */
  guard?: <T>(operation: () => Promise<T>) => Promise<T>;
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
  const client = countingClient(rawClient, record, options.guard ?? ((operation) => operation()));
  return {
    db: drizzle(client, { schema }),
    client,
    stats: () => ({ roundTrips, statements }),
    onQuery(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: () => rawClient.close(),
  };
}

/**
 * Wraps a client to count round trips, and makes `batch()` default to a write
 * transaction: drizzle's `db.batch()` passes no mode, libSQL then uses `deferred`,
 * and a deferred transaction that later writes can fail with SQLITE_BUSY at the lock
 * upgrade without waiting for the busy timeout. `BEGIN IMMEDIATE` waits instead.
 *
 * Write transactions from this process also take turns (one in flight at a time).
 * SQLite has one writer anyway; against sqld, 16 concurrent write batches from one
 * process made the server spin on its write lock at 190% CPU until requests timed out,
 * while queueing them here keeps it busy with useful work.
 */
function countingClient(
  inner: Client,
  record: QueryListener,
  guard: NonNullable<DatabaseOptions['guard']>,
): Client {
  const writer = new Mutex();
  return {
    execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
      record({ kind: 'execute', statements: 1 });
      return guard(() =>
        typeof stmtOrSql === 'string' ? inner.execute(stmtOrSql, args) : inner.execute(stmtOrSql),
      );
    },
    batch(stmts: Array<InStatement | [string, InArgs?]>, mode: TransactionMode = 'write') {
      record({ kind: 'batch', statements: stmts.length });
      if (mode === 'read') return guard(() => inner.batch(stmts, mode));
      return writer.runExclusive(() => guard(() => inner.batch(stmts, mode)));
    },
    migrate: (stmts) => inner.migrate(stmts),
    async transaction(mode: TransactionMode = 'write') {
      record({ kind: 'transaction', statements: 1 });
      const release = mode === 'read' ? () => {} : await writer.acquire();
      let tx: Awaited<ReturnType<Client['transaction']>>;
      try {
        tx = await guard(() => inner.transaction(mode));
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
      tx.execute = (stmt: InStatement) => {
        record({ kind: 'execute', statements: 1 });
        return execute(stmt);
      };
      tx.batch = (stmts: InStatement[]) => {
        record({ kind: 'batch', statements: stmts.length });
        return batch(stmts);
      };
      return tx;
    },
    executeMultiple: (sql) => inner.executeMultiple(sql),
    sync: () => inner.sync(),
    close: () => inner.close(),
    reconnect: () => inner.reconnect(),
    get closed() {
      return inner.closed;
    },
    get protocol() {
      return inner.protocol;
    },
  } as Client;
}
