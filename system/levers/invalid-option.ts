/**
 * The one shape of a lever config error, naming the option and the value received:
 * `batch.maxBatchSize must be an integer from 1 to 1000; received 0`.
 */
export function invalidOption(lever: string) {
  return (option: string, value: unknown, expected: string): never => {
    throw new TypeError(
      `${lever}.${option} must be ${expected}; received ${JSON.stringify(value)}`,
    );
  };
}
