import { Redis } from 'ioredis';

/**
 * Cross-process "something committed" notifications through Redis pub/sub. Only a
 * wake-up travels through Redis: every process then reads the change log from the
 * shared database itself, so a lost message delays delivery until the publisher's
 * poll, and never loses or reorders an event.
 */
export const CHANGES_CHANNEL = 'dataflow:changes';

/** Tells the OTHER processes that something committed (this one drains by itself). */
export interface ChangeNotifier {
  notify(): void;
  close(): Promise<void>;
}

/** A single process: nobody else to tell. */
export const singleProcess: ChangeNotifier = { notify() {}, close: async () => {} };

export async function redisNotifier(
  url: string,
  onNotify: () => void,
  onError: (error: unknown) => void,
): Promise<ChangeNotifier> {
  const options = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true };
  const publisher = new Redis(url, options);
  const subscriber = new Redis(url, { ...options, enableOfflineQueue: true });
  publisher.on('error', onError);
  subscriber.on('error', onError);
  subscriber.on('message', (channel: string) => {
    if (channel === CHANGES_CHANNEL) onNotify();
  });
  await Promise.all([publisher.connect(), subscriber.connect()]);
  await subscriber.subscribe(CHANGES_CHANNEL);
  return {
    notify() {
      publisher.publish(CHANGES_CHANNEL, '1').catch(onError);
    },
    async close() {
      subscriber.disconnect();
      publisher.disconnect();
    },
  };
}
