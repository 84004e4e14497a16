import { defineConfig } from 'drizzle-kit';

// Only used by `npm run db:generate` to write SQL migrations from the schema.
export default defineConfig({
  dialect: 'turso',
  schema: './system/db/schema.ts',
  out: './system/db/migrations',
  dbCredentials: { url: 'file:.data/drizzle-kit.db' },
});
