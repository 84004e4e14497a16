import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { startSqld } from '../load/infra/sqld.ts';
import { DEV_PUBLIC_KEY_FILE, DEV_WEBHOOK_SECRET_FILE } from '../system/env.ts';

/**
 * `make worker-dev`: the API Worker under `wrangler dev --local` (workerd, offline) on
 * 127.0.0.1:${PORT:-8787}, over a local sqld (`.data/sqld-dev`, migrated, seeded with the
 * small fixture when empty). The dev key pair and webhook secret of `make setup` go into
 * `.dev.vars` (wrangler's local secrets file, git-ignored), so `npm run token` tokens
 * work. Ctrl-C stops wrangler (its whole process group: it leaves workerd children
 * otherwise) and sqld.
 */
const port = process.env.PORT || '8787';
const sqld = await startSqld({ dir: '.data/sqld-dev', keepDir: true });
let wrangler: ChildProcess | undefined;
let stopping = false;
const stop = async (code: number) => {
  if (stopping) return;
  stopping = true;
  if (wrangler?.pid && wrangler.exitCode === null) {
    try {
      process.kill(-wrangler.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  await sqld.stop();
  process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

const env = { ...process.env, DATABASE_URL: sqld.url };
for (const args of [
  ['system/db/migrate-cli.ts'],
  ['fixtures/seed-cli.ts', '--size', 'small', '--if-empty'],
]) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', ...args], { env, stdio: 'inherit' });
  if (run.status !== 0) await stop(run.status ?? 1);
}

const quoted = (value: string) =>
  `"${value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"')}"`;
writeFileSync(
  '.dev.vars',
  [
    '# written by `make worker-dev` (scripts/worker-dev.ts): local secrets for wrangler dev',
    `DATABASE_URL=${quoted(sqld.url)}`,
    `CLERK_JWT_KEY=${quoted(readFileSync(DEV_PUBLIC_KEY_FILE, 'utf8'))}`,
    `CLERK_WEBHOOK_SIGNING_SECRET=${quoted(readFileSync(DEV_WEBHOOK_SECRET_FILE, 'utf8').trim())}`,
    '',
  ].join('\n'),
);

console.log(
  `worker-dev: sqld on ${sqld.url}; the Worker on http://127.0.0.1:${port} (Ctrl-C stops both)`,
);
wrangler = spawn(
  'node_modules/.bin/wrangler',
  ['dev', '--local', '--ip', '127.0.0.1', '--port', port, '--show-interactive-dev-session=false'],
  {
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: 'false', WRANGLER_SEND_METRICS: 'false' },
    stdio: 'inherit',
    detached: true,
  },
);
wrangler.once('exit', (code) => void stop(code ?? 0));
