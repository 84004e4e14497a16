import { loadEnv, maskUrl } from '../env.ts';
import { openDatabase } from './client.ts';
import { runMigrations } from './migrate.ts';

// `make db-migrate`: applies committed migrations to DATABASE_URL.
const env = loadEnv(process.env);
const database = await openDatabase({
  url: env.DATABASE_URL,
  authToken: env.DATABASE_AUTH_TOKEN,
  busyTimeoutMs: env.DB_BUSY_TIMEOUT_MS,
});
await runMigrations(database.db);
await database.close();
console.log(`migrations applied to ${maskUrl(env.DATABASE_URL)}`);
