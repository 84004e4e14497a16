import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { freePort, listensOn, portTaken } from '../../load/infra/ports.ts';

describe('listensOn: whose server answers on a port', () => {
  it('names the process that listens, and no other', async () => {
    const server = createServer((_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as { port: number };
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)']);
    try {
      expect(listensOn(process.pid, port)).toBe(true);
      // what a child sees when a parallel test's server took the port it was given
      expect(listensOn(other.pid, port)).toBe(false);
      expect(listensOn(process.pid, await freePort())).toBe(false);
    } finally {
      other.kill();
      server.close();
    }
  });

  it('recognizes a taken port in what Node and sqld print', () => {
    expect(portTaken('Error: listen EADDRINUSE: address already in use 127.0.0.1:8787')).toBe(true);
    expect(portTaken('Error: Address already in use (os error 98)')).toBe(true);
    expect(portTaken('Error: CLERK_JWT_KEY is required')).toBe(false);
  });
});
