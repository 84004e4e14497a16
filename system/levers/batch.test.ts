import { describe, expect, it, vi } from 'vitest';
import { type BatchEvent, createKeyLoader, resolveBatchConfig } from './batch.ts';
import { resolveLevers } from './presets.ts';

const busy = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

describe('resolveBatchConfig', () => {
  it('fills documented defaults', () => {
    expect(resolveBatchConfig()).toEqual({
      enabled: true,
      maxBatchSize: 100,
      waitTime: 0,
      retryStrategy: 'exponential',
      maxAttempts: 3,
      baseDelayMs: 10,
      deadlineMs: 3000,
    });
  });

  it('an explicit undefined does not erase a default', () => {
    expect(resolveBatchConfig({ maxBatchSize: undefined }).maxBatchSize).toBe(100);
  });

  it('names the option and the value it refuses', () => {
    expect(() => resolveBatchConfig({ maxBatchSize: 0 })).toThrow(
      'batch.maxBatchSize must be an integer from 1 to 1000; received 0',
    );
    expect(() => resolveBatchConfig({ waitTime: Number.NaN })).toThrow(
      /batch.waitTime .* received null/,
    );
    expect(() => resolveBatchConfig({ retryStrategy: 'sometimes' as never })).toThrow(
      /batch.retryStrategy .* received "sometimes"/,
    );
  });

  it('presets: unknown names and bad overrides are refused by name', () => {
    expect(resolveLevers('baseline').batch.enabled).toBe(false);
    expect(resolveLevers('batch', { batch: { waitTime: 5 } }).batch.waitTime).toBe(5);
    expect(() => resolveLevers('turbo')).toThrow(
      'unknown preset "turbo"; expected one of baseline, batch, coalesce, cache-memory, cache-redis, recommended',
    );
  });
});

describe('createKeyLoader', () => {
  const config = (over = {}) => resolveBatchConfig({ maxAttempts: 3, baseDelayMs: 10, ...over });
  const table = new Map([
    ['a', 'A'],
    ['b', 'B'],
    ['c', 'C'],
  ]);

  it('batches the keys of one tick into one call; a missing key is a per-key null', async () => {
    const calls: string[][] = [];
    const loader = createKeyLoader(
      'user',
      async (keys) => {
        calls.push([...keys]);
        return new Map([...table].filter(([k]) => keys.includes(k)));
      },
      config(),
    );
    expect(await Promise.all(['a', 'b', 'zz'].map((k) => loader.load(k)))).toEqual([
      'A',
      'B',
      null,
    ]);
    expect(calls).toEqual([['a', 'b', 'zz']]);
  });

  it('waitTime collects keys from later ticks (concurrent requests) into the same batch', async () => {
    vi.useFakeTimers();
    try {
      const calls: string[][] = [];
      const loader = createKeyLoader(
        'user',
        async (keys) => {
          calls.push([...keys]);
          return new Map();
        },
        config({ waitTime: 5 }),
      );
      const first = loader.load('a');
      await vi.advanceTimersByTimeAsync(2);
      const second = loader.load('b');
      await vi.advanceTimersByTimeAsync(5);
      await Promise.all([first, second]);
      expect(calls).toEqual([['a', 'b']]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('maxBatchSize splits a large batch', async () => {
    const sizes: number[] = [];
    const loader = createKeyLoader(
      'user',
      async (keys) => {
        sizes.push(keys.length);
        return new Map();
      },
      config({ maxBatchSize: 4 }),
    );
    await Promise.all(Array.from({ length: 10 }, (_, i) => loader.load(`k${i}`)));
    expect(sizes).toEqual([4, 4, 2]);
  });

  it('immediate: retries a transient failure without waiting, up to maxAttempts', async () => {
    const sleep = vi.fn(async () => {});
    let calls = 0;
    const events: BatchEvent[] = [];
    const loader = createKeyLoader(
      'org',
      async () => {
        calls += 1;
        if (calls < 3) throw busy();
        return new Map([['a', 'A']]);
      },
      config({ retryStrategy: 'immediate' }),
      { sleep, onBatch: (e) => events.push(e) },
    );
    expect(await loader.load('a')).toBe('A');
    expect(calls).toBe(3);
    expect(sleep).not.toHaveBeenCalled();
    expect(events.at(-1)).toMatchObject({ ok: true, attempts: 3, size: 1 });
  });

  it('exponential: full-jitter backoff between attempts, capped', async () => {
    const delays: number[] = [];
    const loader = createKeyLoader(
      'org',
      async () => {
        throw busy();
      },
      config({ retryStrategy: 'exponential', maxAttempts: 4 }),
      {
        sleep: async (ms) => {
          delays.push(ms);
        },
        random: () => 0.999,
      },
    );
    await expect(loader.load('a')).rejects.toThrow('database is locked');
    expect(delays).toEqual([9, 19, 39]); // floor(0.999 * 10 * 2^n)
  });

  it('no retry starts past the overall deadline', async () => {
    let calls = 0;
    const loader = createKeyLoader(
      'org',
      async () => {
        calls += 1;
        await new Promise((r) => setTimeout(r, 40));
        throw busy();
      },
      config({ retryStrategy: 'immediate', maxAttempts: 10, deadlineMs: 100 }),
    );
    await expect(loader.load('a')).rejects.toThrow('database is locked');
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThanOrEqual(3); // 10 attempts allowed, the deadline stopped them
  });

  it('a whole failed batch rejects every waiter; a non-transient error is not retried', async () => {
    let calls = 0;
    const loader = createKeyLoader(
      'user',
      async () => {
        calls += 1;
        throw new Error('no such column: nope');
      },
      config(),
    );
    const results = await Promise.allSettled(['a', 'b'].map((k) => loader.load(k)));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
  });

  it('a per-key failure fails only that key', async () => {
    const loader = createKeyLoader<string | Error>(
      'user',
      async () =>
        new Map<string, string | Error>([
          ['a', 'A'],
          ['b', new Error('bad row')],
        ]),
      config(),
    );
    const [a, b] = await Promise.allSettled([loader.load('a'), loader.load('b')]);
    expect(a).toMatchObject({ status: 'fulfilled', value: 'A' });
    expect(b).toMatchObject({ status: 'rejected' });
  });
});
