import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stopChild } from './infra/child.ts';
import { bundled } from './infra/server-process.ts';

/**
 * A fleet of WebSocket clients in worker processes of their own (`ws-client-process.ts`),
 * so the generator is never the bottleneck of a push figure. Each change frame is timed
 * against its `version` (the sender's send time, epoch ms); only frames sent after
 * `record(fromMs)` count. Every socket keeps a tally: frames received, duplicates and
 * out-of-order ids (the exactly-once-in-order guarantee), resets, closes.
 */
export interface SocketTally {
  received: number;
  duplicates: number;
  outOfOrder: number;
  resets: number;
  closed: number;
}

export type FleetCommand =
  | {
      type: 'connect';
      url: string;
      sockets: number;
      /** The app's sockets authenticate: one token per member; the raw anchor's do not. */
      auth?: { privateKeyPem: string; members: Array<{ userId: string; orgId: string }> };
    }
  | { type: 'record'; fromMs: number }
  | { type: 'pause'; index: number }
  | { type: 'collect'; latencies: boolean; sinceLastRound?: boolean }
  | { type: 'close' };

export type FleetReply =
  | { type: 'ready'; connected: number; failed: number; firstError: string | null }
  | { type: 'recording' }
  | { type: 'collected'; latencies: Float64Array; tallies: SocketTally[] };

export interface FleetOptions {
  /** `ws://host:port/ws` */
  url: string;
  sockets: number;
  /** Worker processes the sockets are spread over. @default 1 */
  processes?: number;
  auth?: { privateKeyPem: string; members: Array<{ userId: string; orgId: string }> };
}

export interface FleetReport {
  /** Delivery latencies of the recorded frames, ms, sorted. */
  latencies: Float64Array;
  tallies: SocketTally[];
}

export interface WsClientFleet {
  readonly connected: number;
  readonly failed: number;
  readonly firstError: string | null;
  /**
   * Count and time the changes whose `version` is at least `fromMs`; resolves once every
   * process has it (send nothing to be counted before that).
   */
  record(fromMs: number): Promise<void>;
  /** Socket `index` of the first process stops reading (its TCP window closes). */
  pause(index: number): void;
  /**
   * Tallies so far, and the sorted latencies unless `latencies: false` (a cheap poll);
   * `sinceLastRound`: only the latencies recorded since the previous such call.
   */
  collect(options?: { latencies: boolean; sinceLastRound?: boolean }): Promise<FleetReport>;
  close(): Promise<void>;
}

const ENTRY = fileURLToPath(new URL('./ws-client-process.ts', import.meta.url));

function reply<T extends FleetReply['type']>(
  child: ChildProcess,
  type: T,
): Promise<Extract<FleetReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: FleetReply) => {
      if (message.type !== type) return;
      cleanup();
      resolve(message as Extract<FleetReply, { type: T }>);
    };
    const onExit = (code: number | null) => {
      cleanup();
      reject(new Error(`a WebSocket client process exited (${code}) before '${type}'`));
    };
    const cleanup = () => {
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

export async function startWsClients(options: FleetOptions): Promise<WsClientFleet> {
  const processes = Math.max(1, Math.min(options.processes ?? 1, options.sockets));
  // from its bundle: a fleet of processes starts in a third of the time tsx takes
  const entry = await bundled(ENTRY);
  const children = Array.from({ length: processes }, () =>
    fork(entry, [], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    }),
  );
  const stopAll = () => Promise.all(children.map((c) => stopChild(c)));
  try {
    const share = Math.ceil(options.sockets / processes);
    const ready = await Promise.all(
      children.map((child, p) => {
        const from = p * share;
        const count = Math.max(0, Math.min(share, options.sockets - from));
        const answer = reply(child, 'ready');
        const command: FleetCommand = {
          type: 'connect',
          url: options.url,
          sockets: count,
          ...(options.auth
            ? {
                auth: {
                  privateKeyPem: options.auth.privateKeyPem,
                  members: options.auth.members.slice(from, from + count),
                },
              }
            : {}),
        };
        child.send(command);
        return answer;
      }),
    );
    const send = (command: FleetCommand) => {
      for (const child of children) child.send(command);
    };
    return {
      connected: ready.reduce((n, r) => n + r.connected, 0),
      failed: ready.reduce((n, r) => n + r.failed, 0),
      firstError: ready.find((r) => r.firstError !== null)?.firstError ?? null,
      async record(fromMs) {
        const acks = children.map((child) => reply(child, 'recording'));
        send({ type: 'record', fromMs });
        await Promise.all(acks);
      },
      pause: (index) => children[0]!.send({ type: 'pause', index } satisfies FleetCommand),
      async collect(collectOptions = { latencies: true }) {
        const parts = await Promise.all(
          children.map((child) => {
            const answer = reply(child, 'collected');
            child.send({
              type: 'collect',
              latencies: collectOptions.latencies,
              sinceLastRound: collectOptions.sinceLastRound ?? false,
            } satisfies FleetCommand);
            return answer;
          }),
        );
        const total = parts.reduce((n, p) => n + p.latencies.length, 0);
        const latencies = new Float64Array(total);
        let at = 0;
        for (const part of parts) {
          latencies.set(part.latencies, at);
          at += part.latencies.length;
        }
        latencies.sort();
        return { latencies, tallies: parts.flatMap((p) => p.tallies) };
      },
      async close() {
        await stopAll();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
