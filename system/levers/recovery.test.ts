import { BrokenCircuitError, TaskCancelledError } from 'cockatiel';
import { describe, expect, it } from 'vitest';
import { toAppError } from '../api/errors.ts';
import { type BreakerState, createDbGuard, resolveRecoveryConfig } from './recovery.ts';

const refused = () => Object.assign(new Error('fetch failed'), { code: 'ECONNREFUSED' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('createDbGuard', () => {
  it('a call past its deadline fails with a timeout', async () => {
    const guard = createDbGuard(resolveRecoveryConfig({ timeoutMs: 30 }));
    await expect(guard.run(() => sleep(300))).rejects.toBeInstanceOf(TaskCancelledError);
  });

  it('without a deadline (embedded databases) a slow call runs to its end, and failures still open the breaker', async () => {
    const guard = createDbGuard(resolveRecoveryConfig({ timeoutMs: 30, breakerThreshold: 2 }), {
      deadline: false,
    });
    expect(await guard.run(() => sleep(100).then(() => 'done'))).toBe('done');
    for (let i = 0; i < 2; i++)
      await expect(guard.run(async () => Promise.reject(refused()))).rejects.toThrow();
    expect(guard.state()).toBe('open');
  });

  it('opens after consecutive transient failures, fails fast while open, probes, recovers', async () => {
    const states: BreakerState[] = [];
    const guard = createDbGuard(
      resolveRecoveryConfig({ breakerThreshold: 3, halfOpenAfterMs: 150 }),
      {
        onStateChange: (s) => states.push(s),
      },
    );
    let calls = 0;
    const failing = async () => {
      calls += 1;
      throw refused();
    };
    for (let i = 0; i < 3; i++) await expect(guard.run(failing)).rejects.toThrow('fetch failed');
    expect(guard.state()).toBe('open');
    await expect(guard.run(failing)).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(3); // the open breaker failed fast: it did not call the database
    await sleep(200);
    expect(await guard.run(async () => 'ok')).toBe('ok'); // the half-open probe succeeds
    expect(guard.state()).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'closed']);
  });

  it('caller errors (a bad query) do not open the breaker', async () => {
    const guard = createDbGuard(resolveRecoveryConfig({ breakerThreshold: 2 }));
    for (let i = 0; i < 5; i++) {
      await expect(
        guard.run(async () => Promise.reject(new Error('no such column: x'))),
      ).rejects.toThrow();
    }
    expect(guard.state()).toBe('closed');
  });

  it('its errors become 503 with Retry-After in the error model, even when wrapped', () => {
    const wrapped = new Error('Failed query', { cause: new BrokenCircuitError() });
    const appError = toAppError(wrapped);
    expect(appError.status).toBe(503);
    expect(appError.code).toBe('unavailable');
    expect(appError.headers?.['Retry-After']).toBe('2');
  });

  it('validates its options by name', () => {
    expect(() => resolveRecoveryConfig({ breakerThreshold: 0 })).toThrow(
      'recovery.breakerThreshold must be a positive integer; received 0',
    );
  });
});
