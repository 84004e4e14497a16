import { type ChildProcess, spawn } from 'node:child_process';
import { basename } from 'node:path';
import { buildServer, SERVER_BUNDLE } from '../../scripts/build.ts';
import { stopChild } from './child.ts';
import { onFreePort, untilServing } from './ports.ts';
import { processCpuMs, processRssBytes } from './proc.ts';

/**
 * Starts a server script as its own process (the real app by default), so the load
 * generator and the server do not share an event loop; ready when `/health` answers.
 */
export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** CPU time (user + system) the process has used so far, ms (Linux `/proc`, 10 ms ticks). */
  cpuMs(): number;
  /** Resident set size now, bytes (Linux `/proc/<pid>/status`). */
  rssBytes(): number;
  stop(): Promise<void>;
}

/** Children still running; killed if this process exits first (a killed run leaves none). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function startServerProcess(
  env: Record<string, string>,
  entry = 'system/node.ts',
  /** Another checkout (the gate's base worktree) runs its own code. */
  cwd?: string,
  /** Node flags, e.g. `--cpu-prof` (the profile is written when the process exits). */
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  return onFreePort((port) => startOn(port, env, entry, cwd, nodeArgs));
}

async function startOn(
  port: number,
  env: Record<string, string>,
  entry: string,
  cwd: string | undefined,
  nodeArgs: readonly string[],
): Promise<ServerProcess> {
  const url = `http://127.0.0.1:${port}`;
  // TypeScript through tsx; a built bundle (.mjs) as it is
  const loader = entry.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, ...loader, entry], {
    env: { ...process.env, LOG_LEVEL: 'warn', ...env, HOST: '127.0.0.1', PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(cwd ? { cwd } : {}),
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-8000);
  });
  await untilServing(child, port, entry, { timeoutMs: 30_000, stderr: () => stderr });
  return {
    url,
    pid: child.pid ?? -1,
    cpuMs: () => processCpuMs(child.pid ?? -1),
    rssBytes: () => processRssBytes(child.pid ?? -1),
    async stop() {
      await stopChild(child);
    },
  };
}

const bundles = new Map<string, Promise<string>>();

/**
 * The bundle of a script of this tree (`scripts/build.ts`), built once per harness
 * process, so never stale: `node` starts it in about a third of the time the same
 * script takes through tsx.
 */
export function bundled(entry: string): Promise<string> {
  let bundle = bundles.get(entry);
  if (!bundle) {
    const out = entry === 'system/node.ts' ? SERVER_BUNDLE : `dist/${basename(entry, '.ts')}.mjs`;
    bundle = buildServer(out, entry);
    bundles.set(entry, bundle);
  }
  return bundle;
}

/** A server script of this tree, started from its bundle with plain `node`. */
export async function startBundledProcess(
  entry: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  return startServerProcess(env, await bundled(entry), undefined, nodeArgs);
}

/** The app as it is deployed: the production bundle (`npm run build`). */
export function startAppProcess(
  env: Record<string, string>,
  nodeArgs: readonly string[] = [],
): Promise<ServerProcess> {
  return startBundledProcess('system/node.ts', env, nodeArgs);
}
