import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay that delays every chunk by half the round trip in each direction: the
 * edge-to-database latency a Worker pays per query, on loopback (netem is not available
 * here). Order is kept per direction; bytes are not altered.
 */
export interface LatencyRelay {
  readonly port: number;
  close(): Promise<void>;
}

export async function startLatencyRelay(
  target: { host: string; port: number },
  rttMs: number,
): Promise<LatencyRelay> {
  const sockets = new Set<Socket>();
  const oneWay = rttMs / 2;
  const pipe = (from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      setTimeout(() => {
        if (!to.destroyed) to.write(chunk);
      }, oneWay);
    });
    from.on('end', () => setTimeout(() => to.end(), oneWay));
    from.on('error', () => to.destroy());
  };
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    pipe(client, upstream);
    pipe(upstream, client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
