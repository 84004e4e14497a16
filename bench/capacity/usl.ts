import { levenbergMarquardt } from 'ml-levenberg-marquardt';

/**
 * Gunther's Universal Scalability Law, X(N) = λN / (1 + σ(N−1) + κN(N−1)): throughput
 * at concurrency N from a single-client rate λ, contention σ (queueing on a shared
 * resource) and coherency κ (crosstalk; what makes throughput fall past N*). Fitted by
 * Levenberg-Marquardt (`ml-levenberg-marquardt`) with the analytical Jacobian, on
 * throughput scaled by the measured X(1) so the three parameters are of similar size.
 */
export interface UslPoint {
  /** Concurrency (requests in flight). */
  n: number;
  /** Throughput at that concurrency, per second. */
  x: number;
}

export interface UslFit {
  lambda: number;
  sigma: number;
  kappa: number;
  /** Concurrency of peak throughput, √((1−σ)/κ); Infinity when κ = 0. */
  nStar: number;
  /** Throughput at N* (the model's ceiling). */
  xMax: number;
  /** Coefficient of determination of the fit on the measured points. */
  r2: number;
}

export class UslInputError extends Error {
  override readonly name = 'UslInputError';
}

export const usl = (lambda: number, sigma: number, kappa: number) => (n: number) =>
  (lambda * n) / (1 + sigma * (n - 1) + kappa * n * (n - 1));

export const MIN_LEVELS = 6;

/**
 * `start`: a fit of similar data to begin from (the gate's bootstrap refits resampled
 * steps hundreds of times): then `maxIterations` can be small, since Levenberg-Marquardt
 * only stops early on an exact fit and otherwise runs every iteration it is given.
 */
export function fitUsl(
  points: readonly UslPoint[],
  options: { start?: UslFit; maxIterations?: number } = {},
): UslFit {
  const levels = new Set(points.map((p) => p.n));
  if (levels.size < MIN_LEVELS) {
    throw new UslInputError(
      `the fit needs at least ${MIN_LEVELS} concurrency levels; got ${levels.size} (${[...levels].join(', ')})`,
    );
  }
  for (const p of points) {
    if (!(Number.isFinite(p.n) && p.n >= 1)) {
      throw new UslInputError(`concurrency must be >= 1; got n=${p.n}`);
    }
    if (!(Number.isFinite(p.x) && p.x > 0)) {
      throw new UslInputError(`throughput must be positive; got x=${p.x} at n=${p.n}`);
    }
  }
  const one = points.find((p) => p.n === 1);
  if (!one) throw new UslInputError('the fit needs the single-client level (n=1)');
  const scale = one.x;
  const data = { x: points.map((p) => p.n), y: points.map((p) => p.x / scale) };
  const start = options.start;
  const result = levenbergMarquardt(data, ([l, s, k]) => usl(l!, s!, k!), {
    initialValues: start ? [start.lambda / scale, start.sigma, start.kappa] : [1, 0.05, 0.0005],
    minValues: [1e-9, 0, 0],
    maxValues: [100, 1, 1],
    maxIterations: options.maxIterations ?? 2000,
    errorTolerance: 1e-12,
    improvementThreshold: 1e-6,
    jacobianFunction:
      ([l, s, k]) =>
      (n) => {
        const d = 1 + s! * (n - 1) + k! * n * (n - 1);
        return [n / d, (-l! * n * (n - 1)) / (d * d), (-l! * n * n * (n - 1)) / (d * d)];
      },
  });
  const [l, sigma, kappa] = result.parameterValues as [number, number, number];
  const lambda = l * scale;
  const model = usl(lambda, sigma, kappa);
  const mean = points.reduce((a, p) => a + p.x, 0) / points.length;
  const ssTot = points.reduce((a, p) => a + (p.x - mean) ** 2, 0);
  const ssRes = points.reduce((a, p) => a + (p.x - model(p.n)) ** 2, 0);
  const nStar = kappa > 0 ? Math.sqrt((1 - sigma) / kappa) : Number.POSITIVE_INFINITY;
  const xMax = Number.isFinite(nStar) ? model(nStar) : lambda / Math.max(sigma, 1e-12);
  return { lambda, sigma, kappa, nStar, xMax, r2: ssTot > 0 ? 1 - ssRes / ssTot : 1 };
}

/** Instances for a target rate with headroom (0.3: run each at most at 70% of X_max). */
export function instancesFor(targetRps: number, xMax: number, headroom: number): number {
  if (!(targetRps > 0)) throw new UslInputError(`target must be positive; got ${targetRps}`);
  if (!(headroom >= 0 && headroom < 1)) {
    throw new UslInputError(`headroom must be in [0, 1); got ${headroom}`);
  }
  return Math.ceil(targetRps / (xMax * (1 - headroom)));
}
