import { pathToFileURL } from 'node:url';
import { progressLine } from '../progress.ts';
import { gateOptionsFromEnv } from './options.ts';
import { renderGateTerminal, writeGateReport } from './report.ts';
import { runGate } from './run.ts';
import { GateUsageError } from './types.ts';

/**
 * `make gate [BASE=<ref>]`: exit 0 pass, 1 regression, 2 usage or environment error
 * (the message says which). Variables: BASE, SCENARIO, PRESET, METRICS, BLOCKS, ROUNDS,
 * ROUND_SEC, WARMUP_SEC, TIMING=0 (deterministic only), ALLOW_DIRTY_BUDGETS=1,
 * RESULTS_DIR.
 */
async function main(): Promise<number> {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping servers and the worktree`);
      controller.abort();
    });
  }
  try {
    const options = gateOptionsFromEnv(process.env);
    const progress = progressLine();
    const report = await runGate(options, {
      signal: controller.signal,
      progress: progress.update,
    });
    progress.done();
    const dir = writeGateReport(report, process.env.RESULTS_DIR || 'results');
    console.log(renderGateTerminal(report));
    console.log(`\n${dir}/gate.md (PR comment), ${dir}/junit.xml, ${dir}/gate.json`);
    return report.passed ? 0 : 1;
  } catch (error) {
    if (controller.signal.aborted) return 130;
    if (error instanceof GateUsageError) {
      console.error(`make gate: ${error.kind} error: ${error.message}`);
      return 2;
    }
    console.error(`make gate: environment error: ${(error as Error).stack ?? error}`);
    return 2;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
