import autocannon from 'autocannon';

/**
 * One closed-model autocannon run that stops when `signal` aborts. autocannon's
 * latency histogram has millisecond resolution: sub-millisecond endpoints report
 * p50 0 or 1 (the open-model generator in `generator.ts` records microseconds).
 */
export function closedLoad(
  options: autocannon.Options,
  signal: AbortSignal,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const instance = autocannon(options, (error, result) =>
      error ? reject(error) : resolve(result),
    );
    const stop = () => instance.stop();
    signal.addEventListener('abort', stop, { once: true });
    instance.on('done', () => signal.removeEventListener('abort', stop));
  });
}
