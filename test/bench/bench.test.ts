import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeReportHtml } from '../../bench/charts.ts';
import {
  BenchUsageError,
  benchOptionsFromEnv,
  PROFILE_SETTINGS,
  SUITES,
} from '../../bench/config.ts';
import { RESULTS_SCHEMA, renderMarkdown, writeResults } from '../../bench/results.ts';
import { runBench } from '../../bench/run.ts';

const resultsDir = mkdtempSync(join(tmpdir(), 'bench-results-'));
afterAll(() => rmSync(resultsDir, { recursive: true, force: true }));

describe('make bench input', () => {
  it.each([
    [{ PROFILE: 'fast' }, 'PROFILE="fast" is not one of smoke, quick, full'],
    [{ SUITE: 'members,nope' }, 'SUITE="nope" is not one of'],
    [{ PRESET: 'turbo' }, 'PRESET="turbo" is not one of'],
    [{ DB: 'postgres' }, 'DB="postgres" is not one of file, sqld'],
    [{ DB: 'sqld', RTT: '-3' }, 'RTT="-3" must be milliseconds'],
    [{ RTT: 'slow' }, 'RTT="slow" must be milliseconds'],
    [{ CPU_PROFILE: 'yes' }, 'CPU_PROFILE="yes" must be 0 or 1'],
  ])('%o is refused by name', (env, message) => {
    expect(() => benchOptionsFromEnv(env)).toThrow(BenchUsageError);
    expect(() => benchOptionsFromEnv(env)).toThrow(message);
  });

  it('defaults: quick profile, every suite but workerd and browser (full, or by name), every preset with baseline first', () => {
    const options = benchOptionsFromEnv({});
    expect(options.profile).toBe('quick');
    expect(options.suites).toEqual(SUITES.filter((s) => s !== 'workerd' && s !== 'browser'));
    expect(benchOptionsFromEnv({ PROFILE: 'full' }).suites).toEqual([...SUITES]);
    expect(benchOptionsFromEnv({ SUITE: 'workerd' }).suites).toEqual(['workerd']);
    expect(benchOptionsFromEnv({ RUNTIME: 'workerd' }).suites).toEqual(['workerd']);
    expect(() => benchOptionsFromEnv({ RUNTIME: 'deno' })).toThrow(/RUNTIME/);
    expect(options.cpuProfile).toBe(false);
    expect(options.presets[0]).toBe('baseline');
    expect(benchOptionsFromEnv({ PRESET: 'batch' }).presets).toEqual(['baseline', 'batch']);
  });

  it('the CLI exits 2 before running anything', () => {
    const run = spawnSync('npx', ['tsx', 'bench/run.ts'], {
      env: { ...process.env, PROFILE: 'fast', RESULTS_DIR: resultsDir },
      encoding: 'utf8',
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('make bench: PROFILE="fast"');
    expect(existsSync(join(resultsDir, 'latest'))).toBe(false);
  });
});

// Real app processes on two cores: a budget with margin for a loaded machine.
describe('a smoke run (real app processes, real database)', { timeout: 180_000 }, () => {
  it('measures the members N+1 and batching, and writes results.json, report.md and latest', async () => {
    const options = benchOptionsFromEnv({
      PROFILE: 'smoke',
      SUITE: 'micro,members,projects,burst',
      PRESET: 'batch',
      RESULTS_DIR: resultsDir,
    });
    const results = await runBench(options);
    expect(results.complete).toBe(true);
    expect(results.failures).toEqual([]);
    // the tinybench tasks ran from their bundle: 6 fixed costs and the 12 batching configs
    const micro = results.figures.filter((f) => f.suite === 'micro');
    expect(micro.map((f) => f.scenario).sort()).toEqual([
      ...Array<string>(12).fill('batch'),
      ...Array<string>(6).fill('fixed'),
    ]);
    for (const figure of micro) {
      expect(figure.value).toBeGreaterThan(0);
      expect(figure.note).toMatch(/from the bundle$/);
    }
    const queries = results.figures.filter(
      (f) => f.suite === 'members' && f.metric === 'DB queries per request',
    );
    const of = (preset: string) => queries.find((f) => f.preset === preset)!.value!;
    expect(of('baseline')).toBe(52); // membership + page + one query per member (deterministic)
    expect(of('batch')).toBe(2); // membership + the page joined with its users
    const finding = results.findings.find((f) => f.finding === 'Multiple round trips')!;
    expect(finding).toMatchObject({ baseline: 52, judged: { preset: 'batch', value: 2 } });
    expect(finding.verdict).toBe('pass');
    expect(results.findings.find((f) => f.finding.startsWith('WebSocket limits'))!.verdict).toBe(
      'not run',
    );
    // the burst hit fresh processes over HTTP, on sqld behind the relay and embedded:
    // without coalescing every request runs its handler and pays its 52 statements
    const requests = PROFILE_SETTINGS.smoke.burstRequests;
    for (const scenario of [
      'cold burst of identical requests',
      'cold burst of identical requests (embedded)',
    ]) {
      const burst = (preset: string, metric: string) =>
        results.figures.find(
          (f) =>
            f.suite === 'burst' &&
            f.scenario === scenario &&
            f.preset === preset &&
            f.metric === metric,
        )!.value;
      expect(burst('baseline', 'DB statements per burst')).toBe(52 * requests);
      expect(burst('batch', 'DB statements per burst')).toBe(2 * requests);
      expect(burst('baseline', 'handler executions per burst')).toBe(requests);
      expect(burst('batch', 'handler executions per burst')).toBe(requests);
    }
    // the round-trip finding is judged on the remote database (default RTT 10 ms)
    expect(options.rttMs).toBe(10);
    const remote = results.figures.filter(
      (f) =>
        f.suite === 'members' &&
        f.scenario === 'members page limit=50, remote DB' &&
        f.metric === 'req/s',
    );
    expect(remote.map((f) => f.preset).sort()).toEqual(['baseline', 'batch']);
    const throughput = results.findings.find(
      (f) => f.finding === 'Multiple round trips (throughput)',
    )!;
    expect(throughput.verdict).not.toBe('not run');
    // every row names where it was measured: never an embedded figure against a network target
    expect(throughput.measuredOn).toBe('sqld + 10 ms RTT, smoke');
    expect(finding.measuredOn).toBe('embedded file:, smoke');
    expect(throughput.note).toMatch(/embedded database: .* req\/s/);
    // next to it, the physics of a page: one query's round trip, with and without the relay
    const trip = (where: string) =>
      results.figures.find((f) => f.metric === `query round trip p50: ${where}`)!.value!;
    expect(trip('through the 10 ms relay')).toBeGreaterThanOrEqual(10);
    expect(trip('sqld alone (no relay)')).toBeGreaterThan(0);
    expect(throughput.note).toMatch(/one query's round trip: p50 [\d.]+ ms through the relay/);
    // the open model ran per preset, with the corrected and the uncorrected latency
    const open = (metric: string) =>
      results.figures.find(
        (f) => f.suite === 'members' && f.preset === 'batch' && f.metric === metric,
      );
    expect(open('open: achieved req/s')!.value).toBeGreaterThan(0);
    expect(open('open: latency p50')!.value).toBeGreaterThan(0);
    // 100 req/s is far below what batching serves: every scheduled arrival was sent
    expect(open('open: arrivals not sent')!.value).toBe(0);
    // the mixed read/write scenario: writes happened, none failed, server-side queries counted
    const projects = results.figures.filter((f) => f.suite === 'projects' && f.preset === 'batch');
    expect(projects.find((f) => f.metric === 'errors')!.value).toBe(0);
    expect(projects.find((f) => f.metric === 'req/s')!.note).toMatch(/; [1-9]\d* writes/);
    expect(projects.find((f) => f.metric === 'DB queries per request')!.value).toBeGreaterThan(0);
    expect(
      results.findings.find((f) => f.finding === 'Cache invalidation overhead (mixed read/write)')!
        .verdict,
    ).toBe('info');

    const dir = writeResults(results);
    const saved = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'));
    expect(saved.schema).toBe(RESULTS_SCHEMA);
    expect(saved.git.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(readFileSync(join(dir, 'report.md'), 'utf8')).toContain('| Multiple round trips |');
    expect(readlinkSync(join(resultsDir, 'latest'))).toBe(results.runId);

    // the report as pictures: a chart per judged finding, in report.html and as SVG files
    await writeReportHtml(results, dir);
    const html = readFileSync(join(dir, 'report.html'), 'utf8');
    for (const judged of results.findings.filter(
      (f) => f.verdict === 'pass' || f.verdict === 'fail',
    )) {
      const slug = judged.finding
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '');
      expect(html, judged.finding).toContain(`<figure id="${slug}"><svg`);
    }
    const svg = readFileSync(join(dir, 'charts', 'multiple-round-trips.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('>baseline<');
    expect(svg).toContain('>batch<');
    expect(existsSync(join(dir, 'charts', 'members-latency-per-preset.svg'))).toBe(true);
    // the run as OpenMetrics for the bench-history dashboard (promtool backfills it in
    // make dashboards-verify): one sample per judged finding, labelled with the run
    const om = readFileSync(join(dir, 'bench.om'), 'utf8');
    expect(om.endsWith('# EOF\n')).toBe(true);
    expect(om).toMatch(
      new RegExp(
        `dataflow_bench_finding\\{run_id="${results.runId}",git_commit="[0-9a-f]{40}",profile="smoke",db="file",finding="Multiple round trips",[^}]*\\} 2 \\d+\\.\\d{3}\n`,
      ),
    );
  });

  it("meters each storm's processes: CPU per delivery and the rate it allows", async () => {
    const results = await runBench(
      benchOptionsFromEnv({
        PROFILE: 'smoke',
        SUITE: 'webhooks',
        PRESET: 'recommended',
        RESULTS_DIR: resultsDir,
        CPU_PROFILE: '1',
      }),
    );
    expect(results.failures).toEqual([]);
    // CPU_PROFILE=1: the app's profile, its bundle read through the source map (zod, hono
    // and svix's verifier are inside dist/server.mjs; libsql is loaded beside it)
    const profile = results.profiles?.find(
      (p) => p.process === 'webhooks-file-recommended' && p.thread === 0,
    );
    expect(profile?.busyMs).toBeGreaterThan(0);
    const origins = profile!.bySource.map((s) => s.name);
    expect(origins).toContain('libsql');
    expect(origins.filter((o) => ['zod', 'hono', 'standardwebhooks'].includes(o))).not.toEqual([]);
    expect(renderMarkdown(results)).toContain('### webhooks-file-recommended, main thread: ');
    const value = (metric: string) => {
      const figure = results.figures.find((f) => f.suite === 'webhooks' && f.metric === metric);
      expect(figure, metric).toBeDefined();
      return figure!.value!;
    };
    for (const db of ['', ' (sqld)', ' (sqld-ws)']) {
      const app = value(`server CPU per event${db}`);
      const generator = value(`generator CPU per event${db}`);
      const sqld = db ? value(`sqld CPU per event${db}`) : 0;
      for (const us of [app, generator, ...(db ? [sqld] : [])]) expect(us).toBeGreaterThan(0);
      expect(value(`CPU-bound rate${db}`)).toBe(
        Math.round((availableParallelism() * 1e6) / (app + sqld + generator)),
      );
    }
    expect(value('raw commits: CPU per commit (file)')).toBeGreaterThan(0);
    expect(value('HTTP ceiling: server CPU per request')).toBeGreaterThan(0);
    // the issue's own anchor, in the same rounds: @libsql/client, a write batch per event
    expect(value('raw client batches/s (file)')).toBeGreaterThan(0);
    expect(value('ingest ÷ raw client batches')).toBeGreaterThan(0);
    const note = (finding: string) => results.findings.find((f) => f.finding === finding)!.note;
    expect(note('Event-processing bottlenecks (sqld rate)')).toMatch(
      /^CPU per delivery: app \d+ µs, sqld \d+ µs, generator \d+ µs; /,
    );
    expect(note('Event-processing bottlenecks')).toMatch(
      /(^|; )against one @libsql\/client write batch per event on the same disk \(\d+\/s\), the app's ingest is [\d.]+x; HTTP ceiling: /,
    );
  });

  it("times each push event's answer, counts the spans of a sampled request, and tells cold misses from warm ones", async () => {
    const results = await runBench(
      benchOptionsFromEnv({
        PROFILE: 'smoke',
        SUITE: 'ws,overhead,zipf',
        RESULTS_DIR: resultsDir,
        CPU_PROFILE: '1',
      }),
    );
    expect(results.failures).toEqual([]);
    // CPU_PROFILE=1: each telemetry level against the one below, origin by origin; the
    // differences add up to the difference of the two processes' measured CPU
    const comparisons = results.profileComparisons ?? [];
    expect(comparisons.map((c) => c.name)).toEqual([
      'metrics only over telemetry off',
      'traces at 10% over metrics only',
      'traces at 100% over metrics only',
    ]);
    for (const c of comparisons) {
      const sum = c.byOrigin.reduce((total, o) => total + o.differenceUs, 0);
      expect(sum).toBeCloseTo(c.other.cpuPerRequestUs - c.base.cpuPerRequestUs, 6);
    }
    // only the traced process runs the trace SDK and the span serializer (metrics only
    // runs the metrics SDK, in both processes)
    const tracing = ['@opentelemetry/sdk-trace', '@opentelemetry/otlp-transformer'];
    const sdk = comparisons[2]!.byOrigin.filter((o) => tracing.includes(o.name));
    expect(sdk.every((o) => o.baseUs === 0)).toBe(true);
    expect(sdk.some((o) => o.otherUs > 0)).toBe(true);
    const figure = (suite: string, metric: string) => {
      const found = results.figures.find((f) => f.suite === suite && f.metric === metric);
      expect(found, metric).toBeDefined();
      return found!;
    };
    for (const side of ['', 'raw ws ', 'raw ws (window) ']) {
      expect(figure('ws', `${side}answer p50`).value).toBeGreaterThan(0);
    }
    // a cache hit's trace as deployed, counted by the SDK: the server span, its in-memory
    // stages (auth, cache) folded into it; the odd one past 100 µs on a loaded machine keeps its own
    const spans = figure('overhead', 'spans per request: traces 100%').value;
    expect(spans).toBeGreaterThanOrEqual(1);
    expect(spans).toBeLessThan(2);
    expect(Number.isFinite(figure('overhead', 'CPU per span: traces 100%').value)).toBe(true);
    // a ratio of paired rounds carries its 95% interval, and so does the finding judging it
    const hit = figure('overhead', 'members page, cache hit ÷ bare node:http (req/s)');
    expect(hit.interval!.low).toBeLessThanOrEqual(hit.interval!.high);
    expect(
      results.findings.find((f) => f.finding === 'App overhead: members page, cache hit')!.interval,
    ).toEqual(hit.interval);
    // the span's cost, after the interval's clause when the interval reaches across 15%
    expect(
      results.findings.find((f) => f.finding === 'App overhead: telemetry, 100% traces')!.note,
    ).toMatch(
      /(^|; )[\d.]+ spans? per sampled request at about -?[\d.]+ µs of CPU each; 15% of the /,
    );
    // how quiet the host was: the bare hello's server's share of a core, and a warning
    // that says so when it was held back
    const cores = figure('overhead', 'server cores used: bare node:http hello').value!;
    expect(cores).toBeGreaterThan(0);
    expect(cores).toBeLessThanOrEqual(availableParallelism());
    const heldBack = results.warnings.some((w) => w.includes("bare node:http hello's server used"));
    expect(heldBack).toBe(cores < 0.75);
    // the Zipf mix's first read of each key misses under any invalidation: the warm-up
    // reads each org's first pages, and the row is judged without any cold miss left
    const zipf = (metric: string) =>
      results.figures.find(
        (f) => f.suite === 'zipf' && f.preset === 'cache-memory' && f.metric === metric,
      )!;
    const warm = zipf('hit ratio, warm keys').value!;
    expect(warm).toBeGreaterThanOrEqual(zipf('hit ratio').value!);
    expect(warm).toBeGreaterThan(50);
    expect(warm).toBeLessThanOrEqual(100);
    const row = results.findings.find((f) => f.finding === 'Cache invalidation overhead')!;
    expect(row.judged?.value).toBe(warm);
    expect(row.note).toMatch(/^[\d.]+% over every read, \d+ cold misses/);
  });

  it('Ctrl-C saves partial results marked incomplete and exits 130', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts'], {
      env: {
        ...process.env,
        PROFILE: 'smoke',
        SUITE: 'members',
        PRESET: 'batch',
        RESULTS_DIR: resultsDir,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!interrupted && stderr.includes('members: round')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(130);
    const saved = JSON.parse(readFileSync(join(resultsDir, 'latest', 'results.json'), 'utf8'));
    expect(saved.complete).toBe(false);
    expect(saved.incompleteReason).toBe('interrupted');
  });
});
