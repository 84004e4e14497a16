import { parseArgs } from 'node:util';

/**
 * The options every A/B script shares (`--rounds`, `--duration`, `--connections`), plus
 * its own string options. A bad number names the flag and exits 2.
 */
export function parseAbArgs<E extends Record<string, { type: 'string'; default?: string }>>(
  script: string,
  extra: E = {} as E,
) {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '5' },
      connections: { type: 'string', default: '16' },
      ...extra,
    },
    strict: true,
  });
  const positive = (name: string) => {
    const raw = (values as Record<string, string | undefined>)[name];
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0) {
      console.error(`${script}: --${name} must be a positive integer, got ${JSON.stringify(raw)}`);
      process.exit(2);
    }
    return n;
  };
  return {
    values: values as unknown as Record<keyof E, string | undefined>,
    rounds: positive('rounds'),
    durationSec: positive('duration'),
    connections: positive('connections'),
  };
}

/** Median of interleaved rounds (the upper one for an even count). */
export const median = (xs: readonly number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
