import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { hasExited } from './child.ts';

/** A free TCP port on 127.0.0.1 (the OS picks it; we release it for the child to bind). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === 'object') resolve(address.port);
        else reject(new Error('no port'));
      });
    });
  });
}

/**
 * Whether process `pid` holds the socket listening on 127.0.0.1:`port`. Between
 * `freePort()` releasing a port and a child binding it, a server another test starts in
 * parallel can take it, and that server's `/health` then answers for ours (seen once:
 * the gate's requests reached another test's app and got 401s). Read from Linux
 * `/proc`; where there is none, assumed.
 */
export function listensOn(pid: number | undefined, port: number): boolean {
  let table: string;
  try {
    table = readFileSync('/proc/net/tcp', 'utf8');
  } catch {
    return true;
  }
  if (pid === undefined) return false;
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    // local_address, and st 0A: LISTEN
    if (fields[1] === local && fields[3] === '0A') inodes.add(`socket:[${fields[9]}]`);
  }
  if (inodes.size === 0) return false;
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return inodes.has(readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        return false; // closed meanwhile
      }
    });
  } catch {
    return false; // the process is gone
  }
}

/** What a server prints when its port is taken (Node: `EADDRINUSE`; sqld: os error 98). */
export const portTaken = (stderr: string): boolean =>
  /EADDRINUSE|address already in use/i.test(stderr);

/** A child that exited because the port it was given was taken meanwhile. */
export class PortTakenError extends Error {}

/**
 * Starts a server with `start(port)` on a free port, and on another one when that port
 * was taken before the server bound it (`PortTakenError`), up to three times.
 */
export async function onFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freePort());
    } catch (error) {
      if (!(error instanceof PortTakenError) || attempt === 3) throw error;
    }
  }
}

/**
 * Resolves once `child` itself answers `GET /health` on 127.0.0.1:`port` (another server
 * may hold the port: see `listensOn`); throws if it exits first (a `PortTakenError` when
 * its port was taken) or is not serving within `timeoutMs` (then it is killed).
 */
export async function untilServing(
  child: ChildProcess,
  port: number,
  what: string,
  options: { timeoutMs: number; stderr: () => string },
): Promise<void> {
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (hasExited(child)) {
      const message = `${what} exited early (${child.exitCode}): ${options.stderr()}`;
      throw portTaken(options.stderr()) ? new PortTakenError(message) : new Error(message);
    }
    try {
      if ((await fetch(`${url}/health`)).ok && listensOn(child.pid, port)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${what} did not become healthy on ${url}: ${options.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
