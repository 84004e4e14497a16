import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { budgetFor, DETERMINISTIC_METRICS, TIMING_METRICS } from '../budgets.ts';
import { median, pooledBootstrapRatio, select } from '../stats.ts';
import { evaluate } from './evaluate.ts';
import { measureEntry } from './measure.ts';
import { gateOptionsFromEnv } from './options.ts';
import { seededDatabase } from './seeded-db.ts';
import { type GateOptions, GateUsageError, type Measured } from './types.ts';

/**
 * `make gate-calibrate`: proves the gate on this machine. The same measurement and the
 * same decision as `make gate BASE=…`, repeated RUNS times per level:
 * - level 0: head against itself (unchanged code): every "regression" is a false alarm;
 * - levels 5/10/20%: the head runs with the calibration knob (CALIBRATION_EXTRA_MS: busy
 *   CPU on the members route) sized to that fraction of the route's p95, measured first.
 * Levels are interleaved run by run, so machine weather hits each level alike.
 */
const LEVELS = [0, 0.05, 0.1, 0.2] as const;

interface Tally {
  level: number;
  extraMs: number;
  runs: number;
  /** Runs where the gate's p95 verdict was `regression`. */
  p95Flagged: number;
  /** Runs where the server CPU per request (`cpu_us`) was decided a regression. */
  cpuFlagged: number;
  /** Runs where any metric of the gate failed (the gate's exit code would be 1). */
  gateFailed: number;
  ratios: number[];
  /** Every run's rounds, base and head, for re-deciding with another method. */
  measurements: Measured['rounds'][];
}

export async function calibrate(
  options: GateOptions,
  runs: number,
  progress: (line: string) => void,
) {
  const budget = budgetFor('members', 'recommended')!;
  const cleanups: Array<() => void | Promise<void>> = [];
  const started = Date.now();
  try {
    const fixture = await seededDatabase(cleanups);
    const head = { cwd: process.cwd() };
    // every side carries the knob (0 when unchanged), so every calibration process runs
    // in the one mode the knob is allowed in (measure.ts)
    const knob = (extraMs: number) => ({ CALIBRATION_EXTRA_MS: String(extraMs) });
    // the reference p95 that sizes the injected regressions
    progress('calibration: reference p95 of the members route (unchanged code)');
    const pilot = await measureEntry(
      budget,
      [{ name: 'head', ...head, env: knob(0) }],
      fixture,
      { ...options, timing: true },
      { progress },
    );
    const all = pilot.pairs.flatMap((p) => [...p.head]);
    const referenceP95 = select(Float64Array.from(all), all.length, 0.95);
    // A busy millisecond in the handler moves the client's p95 by more than a
    // millisecond on this machine (the tail amplifies it), so the knob is sized by
    // measurement: one pilot comparison at 20% of the reference p95 gives the ratio of
    // measured to nominal effect, and every level is scaled by it. The table reports
    // the measured p95 ratio of every level, so the sizing can be checked.
    progress('calibration: sizing the knob (pilot at 20% of the reference p95)');
    const pilotMs = 0.2 * referenceP95;
    const sizing = await measureEntry(
      budget,
      [
        { name: 'base', ...head, env: knob(0) },
        { name: 'head', ...head, env: knob(Number(pilotMs.toFixed(3))) },
      ],
      fixture,
      { ...options, timing: true },
    );
    const pilotRatio = pooledBootstrapRatio(sizing.pairs, 0.95, { iterations: 1 }).ratio;
    const scale = Math.min(1, Math.max(0.2, 0.2 / Math.max(pilotRatio - 1, 0.01)));
    const tallies: Tally[] = LEVELS.map((level) => ({
      level,
      extraMs: Math.round(level * referenceP95 * scale * 1000) / 1000,
      runs: 0,
      p95Flagged: 0,
      cpuFlagged: 0,
      gateFailed: 0,
      ratios: [],
      measurements: [],
    }));
    for (let run = 1; run <= runs; run++) {
      for (const tally of tallies) {
        progress(
          `calibration: run ${run}/${runs}, injected ${tally.level * 100}% (${tally.extraMs} ms)`,
        );
        const measured = await measureEntry(
          budget,
          [
            { name: 'base', ...head, env: knob(0) },
            { name: 'head', ...head, env: knob(tally.extraMs) },
          ],
          fixture,
          { ...options, timing: true },
        );
        const rows = evaluate(budget, measured, { ...options, timing: true }, ['any'], true);
        const p95 = rows.find((r) => r.metric === 'p95');
        tally.runs++;
        if (p95?.verdict === 'regression') tally.p95Flagged++;
        if (rows.find((r) => r.metric === 'cpu_us')?.verdict === 'regression') tally.cpuFlagged++;
        if (rows.some((r) => r.verdict === 'regression')) tally.gateFailed++;
        if (p95?.ratio) tally.ratios.push(p95.ratio);
        tally.measurements.push(measured.rounds);
      }
    }
    return {
      schema: 'dataflow.gate-calibration/v1',
      startedAt: new Date(started).toISOString(),
      elapsedMin: Math.round((Date.now() - started) / 6000) / 10,
      referenceP95Ms: referenceP95,
      sizing: { pilotExtraMs: pilotMs, pilotRatio, scale },
      settings: {
        blocks: options.blocks,
        rounds: options.rounds,
        roundSec: options.roundSec,
        warmupSec: options.warmupSec,
        runs,
      },
      tallies,
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => {});
  }
}

export function renderCalibration(result: Awaited<ReturnType<typeof calibrate>>): string {
  const rows = result.tallies.map((t) => {
    const what =
      t.level === 0 ? 'unchanged code (false alarms)' : `+${t.level * 100}% p95 injected`;
    const sorted = [...t.ratios].sort((a, b) => a - b);
    return `| ${what} | ${t.extraMs} | ${t.p95Flagged} / ${t.runs} | ${t.cpuFlagged} / ${t.runs} | ${t.gateFailed} / ${t.runs} | ${median(sorted).toFixed(3)} | ${sorted[0]?.toFixed(3)}–${sorted.at(-1)?.toFixed(3)} |`;
  });
  const s = result.settings;
  return [
    `# Gate calibration (${result.startedAt}, ${result.elapsedMin} min)`,
    '',
    `Route: members page (members/recommended, 1 connection). Reference p95 ${result.referenceP95Ms.toFixed(3)} ms. The knob burns CPU in every request: level × reference p95 × ${result.sizing.scale.toFixed(2)} (a pilot with ${result.sizing.pilotExtraMs.toFixed(3)} ms moved p95 by ×${result.sizing.pilotRatio.toFixed(3)}; the scale makes the measured effect match the level).`,
    `Gate settings: ${s.blocks} blocks of fresh processes × ${s.rounds} interleaved rounds × ${s.roundSec}s per side, ${s.warmupSec}s warm-up; ${s.runs} runs per level, levels interleaved.`,
    '',
    '| condition | extra ms | p95 flagged | cpu_us flagged | gate failed | median p95 ratio | range |',
    '|---|---:|---:|---:|---:|---:|---|',
    ...rows,
    '',
    'Targets: at most 1 false alarm in 20 unchanged runs; a 10% p95 regression detected in at least 19 of 20.',
    '',
    `Reproduce: \`make gate-calibrate RUNS=${s.runs}\` (same as \`RUNS=${s.runs} npx tsx bench/gate/calibrate.ts\`).`,
    '',
  ].join('\n');
}

/**
 * The gate's options for a calibration: every timing metric (`cpu_us` too) and the
 * deterministic ones, as `make gate BASE=…` would decide them. Not the capacity and
 * build metrics: they are not what the knob moves, and capacity needs a real base.
 */
export function calibrationOptions(env: Record<string, string | undefined>): GateOptions {
  return gateOptionsFromEnv({
    ...env,
    METRICS: [...TIMING_METRICS, ...DETERMINISTIC_METRICS].join(','),
  });
}

async function main(): Promise<number> {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    // exiting kills the app servers this run started (load/servers.ts)
    process.on(signal, () => process.exit(130));
  }
  try {
    const options = calibrationOptions(process.env);
    const runsRaw = process.env.RUNS || '20';
    const runs = Number(runsRaw);
    if (!Number.isInteger(runs) || runs < 1 || runs > 200) {
      throw new GateUsageError(
        'usage',
        `RUNS=${JSON.stringify(runsRaw)} must be a whole number from 1 to 200`,
      );
    }
    const result = await calibrate(options, runs, (line) =>
      console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`),
    );
    const dir = join(
      process.env.RESULTS_DIR || 'results',
      'gate-calibration',
      result.startedAt.replace(/[:.]/g, '-'),
    );
    mkdirSync(dir, { recursive: true });
    const md = renderCalibration(result);
    writeFileSync(join(dir, 'calibration.json'), `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(dir, 'calibration.md'), md);
    console.log(md);
    console.log(`${dir}/calibration.md, ${dir}/calibration.json`);
    return 0;
  } catch (error) {
    if (error instanceof GateUsageError) {
      console.error(`make gate-calibrate: ${error.kind} error: ${error.message}`);
      return 2;
    }
    throw error;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
