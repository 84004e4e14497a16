import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

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
