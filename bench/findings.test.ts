import { describe, expect, it } from 'vitest';
import { benchOptionsFromEnv } from './config.ts';
import { buildFindings } from './findings.ts';
import type { Figure } from './results.ts';
import { BROWSER_SCENARIO, browserLabel } from './suites/browser.ts';
import { WORKERD_SCENARIO } from './suites/workerd.ts';

const rps = (preset: string, runtime: 'node' | 'workerd', value: number): Figure => ({
  suite: 'workerd',
  scenario: WORKERD_SCENARIO,
  preset,
  metric: `req/s: ${runtime}`,
  value,
  unit: 'req/s',
  samples: 100,
});

describe('the workerd findings rows', () => {
  const options = benchOptionsFromEnv({ SUITE: 'workerd', RTT: '10' });
  const figures = [
    rps('baseline', 'workerd', 16),
    rps('batch', 'workerd', 140),
    rps('recommended', 'workerd', 60),
    rps('recommended (edge)', 'workerd', 750),
    rps('recommended (edge)', 'node', 240),
    {
      ...rps('recommended (edge)', 'workerd', 3.1),
      metric: 'req/s: workerd ÷ Node',
      unit: 'x',
    },
  ];
  const row = (finding: string) =>
    buildFindings(figures, options).find((f) => f.finding === finding)!;

  it('judges batching and each cache level against baseline on workerd', () => {
    expect(row('Multiple round trips (throughput, workerd)')).toMatchObject({
      verdict: 'pass',
      judged: { preset: 'batch', value: 140, ratio: 8.75 },
    });
    // 60 / 16 < 5: a memory level that buys too little fails
    expect(row('Cache strategy on workerd (memory level)').verdict).toBe('fail');
    const edge = row('Cache strategy on workerd (edge level)');
    expect(edge).toMatchObject({
      verdict: 'pass',
      judged: { preset: 'recommended (edge)', value: 750 },
    });
    expect(edge.note).toMatch(/Node over the same sqld: 240 req\/s; workerd ÷ Node 3.1x/);
  });

  it('says not run when the suite did not run', () => {
    const quick = benchOptionsFromEnv({});
    const rows = buildFindings(figures, quick).filter((f) => f.finding.includes('workerd'));
    expect(rows.length).toBeGreaterThanOrEqual(4);
    expect(new Set(rows.map((r) => r.verdict))).toEqual(new Set(['not run']));
  });
});

describe('the browser findings rows', () => {
  const options = benchOptionsFromEnv({ SUITE: 'browser' });
  const at = (client: string, metric: string, value: number): Figure => ({
    suite: 'browser',
    scenario: BROWSER_SCENARIO,
    preset: browserLabel('recommended', client),
    metric,
    value,
    unit: '',
    samples: 6,
  });
  const row = (figures: Figure[], finding: string) =>
    buildFindings(figures, options).find((f) => f.finding === finding)!;

  it('judges the recommended client against the baseline client on the same server', () => {
    const figures = [
      at('baseline', 'API requests per dashboard view', 4),
      at('recommended', 'API requests per dashboard view', 1),
      at('baseline', 'member-list reads after a burst of webhooks', 20),
      at('recommended', 'member-list reads after a burst of webhooks', 1),
    ];
    expect(row(figures, 'Multiple round trips (browser)')).toMatchObject({
      verdict: 'pass',
      judged: { value: 1, ratio: 0.25 },
    });
    // one refetch is a storm that was not cured
    expect(row(figures, 'Redundant data fetching (browser)').verdict).toBe('fail');
  });
});

describe('the metrics-only telemetry row', () => {
  it("sets what recording a hit's metrics costs against the hit's CPU with telemetry off", () => {
    const options = benchOptionsFromEnv({ PROFILE: 'full' });
    const overhead = figuresOf('overhead', 'telemetry overhead, members cache hit');
    const [row] = buildFindings(
      [
        overhead('overhead (CPU per request): metrics only (default)', 2.1, '%'),
        overhead('server CPU per request: telemetry off', 120, 'us'),
        {
          ...figuresOf('micro', 'fixed')('metrics of one cache hit mean', 0.9, 'us'),
          preset: null,
        },
      ],
      options,
    ).filter((f) => f.finding === 'App overhead: telemetry, metrics only');
    expect(row!.note).toBe(
      "recording a cache hit's metrics costs 0.9 µs in the micro suite, 0.8% of the 120 µs a hit costs with telemetry off",
    );
  });
});

describe('the cache invalidation row', () => {
  const options = benchOptionsFromEnv({ SUITE: 'zipf' });
  const zipf = figuresOf('zipf', 'Zipf read/write mix');
  const row = (figures: Figure[]) =>
    buildFindings(figures, options).find((f) => f.finding === 'Cache invalidation overhead')!;

  it('is judged on the warm keys, with every read in its note', () => {
    const all = {
      ...zipf('hit ratio', 84.2, '%'),
      preset: 'cache-memory',
      note: "203 cold misses (a key's first read) included",
    };
    const warm = { ...zipf('hit ratio, warm keys', 97.9, '%'), preset: 'cache-memory' };
    const judged = row([all, warm]);
    expect(judged).toMatchObject({ verdict: 'pass', judged: { value: 97.9 } });
    expect(judged.note).toBe(
      "84.2% over every read, 203 cold misses (a key's first read) included",
    );
    expect(row([all, { ...warm, value: 93 }]).verdict).toBe('fail');
  });
});

describe('the ingest rows', () => {
  const options = benchOptionsFromEnv({ SUITE: 'webhooks' });
  const storm = (metric: string, value: number): Figure => ({
    suite: 'webhooks',
    scenario: 'webhook storm',
    preset: 'recommended',
    metric,
    value,
    unit: metric.startsWith('verified') ? 'events/s' : 'x',
    samples: 100,
  });
  const rowOf = (finding: string) => (figures: Figure[]) =>
    buildFindings(figures, options).find((f) => f.finding === finding)!;
  const row = rowOf('Event-processing bottlenecks (sqld rate)');

  it('judges embedded ingest on the prepared statements, with @libsql/client in its note', () => {
    const embedded = rowOf('Event-processing bottlenecks');
    const judged = embedded([
      storm('ingest ÷ raw commits', 0.13),
      { ...storm('raw client batches/s (file)', 7500), preset: null },
      storm('ingest ÷ raw client batches', 0.34),
    ]);
    expect(judged).toMatchObject({ verdict: 'fail', judged: { value: 0.13 } });
    expect(judged.note).toBe(
      "against one @libsql/client write batch per event on the same disk (7500/s), the app's ingest is 0.34x",
    );
    expect(embedded([storm('ingest ÷ raw commits', 0.13)]).note).toBeUndefined();
  });

  it('is judged on HTTP, with the WebSocket transport in its note', () => {
    const judged = row([
      storm('verified events/s (sqld)', 796),
      storm('verified events/s (sqld-ws)', 885),
      storm('ingest ÷ raw commits (sqld-ws)', 1.56),
    ]);
    expect(judged).toMatchObject({ verdict: 'fail', judged: { value: 796 } });
    expect(judged.note).toMatch(/one WebSocket .*: 885 events\/s into a fresh sqld, 1.56x/);
    expect(row([storm('verified events/s (sqld)', 1200)])).toMatchObject({ verdict: 'pass' });
    expect(row([storm('verified events/s (sqld)', 1200)]).note).toBeUndefined();
  });

  it("says where the storm's CPU went and the rate it allows", () => {
    const cpu = (metric: string, value: number, unit: string): Figure => ({
      ...storm(metric, value),
      unit,
    });
    const judged = row([
      storm('verified events/s (sqld)', 640),
      cpu('server CPU per event (sqld)', 1100, 'µs'),
      cpu('sqld CPU per event (sqld)', 700, 'µs'),
      cpu('generator CPU per event (sqld)', 400, 'µs'),
      cpu('CPU-bound rate (sqld)', 909, 'events/s'),
      // the embedded storm's figures are not this row's
      cpu('server CPU per event', 500, 'µs'),
    ]);
    expect(judged.note).toBe(
      "CPU per delivery: app 1100 µs, sqld 700 µs, generator 400 µs; on this machine's cores that allows at most 909 events/s if no process ever waited",
    );
  });

  it("names sqld's own cost of a request, from its raw anchor", () => {
    const judged = row([
      storm('verified events/s (sqld)', 640),
      { ...storm('sqld CPU per raw write batch (sqld)', 1450), preset: null, unit: 'us' },
    ]);
    expect(judged.note).toBe(
      "sqld alone spends 1450 µs of CPU on each request of its raw anchor (a write batch of two inserts); the app's group commit shares one request among the deliveries that arrive together",
    );
  });
});

/** A builder of figures of one suite's scenario (the `recommended` preset's). */
const figuresOf =
  (suite: string, scenario: string) =>
  (metric: string, value: number, unit: string): Figure => ({
    suite,
    scenario,
    // the anchors' figures and the ratios belong to no preset
    preset: metric.startsWith('raw') || metric.includes('÷') ? null : 'recommended',
    metric,
    value,
    unit,
    samples: 200,
  });

describe('the push rows', () => {
  const options = benchOptionsFromEnv({});
  /** A push row judged on `ratio`, with the median answers of the app and both bare modes. */
  const pushRow = (
    sockets: number,
    rate: number,
    finding: string,
    answers: { ratio: number; app: number; raw: number; windowed: number },
  ) => {
    const ws = figuresOf('ws', `fan-out ${sockets} sockets x ${rate} events/s`);
    const figures = [
      ws('delivery p99 ÷ raw ws', answers.ratio, 'x'),
      ws('answer p50', answers.app, 'ms'),
      ws('raw ws answer p50', answers.raw, 'ms'),
      ws('raw ws (window) answer p50', answers.windowed, 'ms'),
    ];
    return buildFindings(figures, options).find(
      (f) => f.finding === `WebSocket limits: push, ${finding}`,
    )!;
  };
  // the second: a frame per change falls seconds behind at 1,000 x 200, so the note takes
  // the faster of the bare server's modes, as the verdict does
  it.each([
    {
      shape: [200, 50, '200 sockets x 50 events/s'] as const,
      answers: { ratio: 1.62, app: 8.7, raw: 6.45, windowed: 6.6 },
      note: "median answer to the event's POST: app 8.7 ms (verify, commit, fan-out), bare ws server 6.45 ms (fan-out): the app's path before its fan-out is about 2.25 ms of each delivery",
    },
    {
      shape: [1000, 200, '1,000 sockets x 200 events/s'] as const,
      answers: { ratio: 2.25, app: 26.14, raw: 9411.51, windowed: 17.02 },
      note: "median answer to the event's POST: app 26.14 ms (verify, commit, fan-out), bare ws server 17.02 ms (fan-out): the app's path before its fan-out is about 9.12 ms of each delivery",
    },
    {
      shape: [1000, 200, '1,000 sockets x 200 events/s'] as const,
      answers: { ratio: 1.69, app: 5.36, raw: 9411.51, windowed: 7.2 },
      note: "median answer to the event's POST: app 5.36 ms (verify, commit, fan-out), bare ws server 7.2 ms (fan-out): the app answered 1.84 ms sooner, so the bare server's answers waited behind its own fan-outs and the difference does not isolate the app's path",
    },
  ])("$shape.2: the app's path before its fan-out, in the note", ({ shape, answers, note }) => {
    const [sockets, rate, finding] = shape;
    const row = pushRow(sockets, rate, finding, answers);
    expect(row.verdict).toBe('fail');
    expect(row.note).toBe(note);
  });
});

describe('the traces row', () => {
  const options = benchOptionsFromEnv({ PROFILE: 'full' });
  const overhead = figuresOf('overhead', 'telemetry overhead, members cache hit');
  const row = (spans: number) =>
    buildFindings(
      [
        overhead('overhead (CPU per request): traces 100%', 82, '%'),
        overhead('spans per request: traces 100%', spans, 'spans'),
        overhead('CPU per span: traces 100%', 24.5, 'us'),
        overhead('server CPU per request: telemetry off', 120, 'us'),
      ],
      options,
    ).find((f) => f.finding === 'App overhead: telemetry, 100% traces')!;

  it('turns the 15% target into a budget per span, next to what a span costs', () => {
    expect(row(4).verdict).toBe('fail');
    expect(row(4).note).toBe(
      '4 spans per sampled request at about 24.5 µs of CPU each; 15% of the 120 µs a request costs without telemetry leaves 4.5 µs per span',
    );
    // a production cache hit is one span (its in-memory stages fold into it)
    expect(row(1).note).toMatch(
      /^1 span per sampled request at about 24.5 µs of CPU each; .* 18\.0 µs per span$/,
    );
  });
});

describe('the app-overhead capacity rows', () => {
  const options = benchOptionsFromEnv({});
  const http = figuresOf('overhead', 'app overhead vs the bare runtime');
  // the cache hit's figures carry its preset, as the suite's do
  const hit = (metric: string, value: number) => ({
    ...http(metric, value, 'x'),
    preset: 'recommended',
  });
  const row = (rps: number, cpu?: number) =>
    buildFindings(
      [
        hit('members page, cache hit ÷ bare node:http (req/s)', rps),
        ...(cpu === undefined
          ? []
          : [hit('members page, cache hit ÷ bare node:http (CPU per request)', cpu)]),
        http('req/s: bare node:http hello', 9060, 'req/s'),
        http('server CPU per request: bare node:http hello', 55.59, 'us'),
      ],
      options,
    ).find((f) => f.finding === 'App overhead: members page, cache hit')!;

  it('judges when req/s and CPU per request agree', () => {
    expect(row(0.45, 0.42)).toMatchObject({ verdict: 'pass' });
    expect(row(0.25, 0.24)).toMatchObject({ verdict: 'fail' });
    expect(row(0.25, 0.24).note).toBe("from the server's CPU per request, 0.24x the bare hello");
  });

  it('gives no verdict when a held-back anchor flatters the req/s ratio', () => {
    // a CI run: the bare hello's server at half a core, the cache hit 0.61x in req/s
    const disagree = row(0.61, 0.34);
    expect(disagree.verdict).toBe('info');
    expect(disagree.note).toBe(
      "from the server's CPU per request, 0.34x the bare hello, against 0.61x in req/s: no verdict from this run (the bare hello's server used 0.50 of a core: the generator or the host held it back)",
    );
  });

  it('judges on req/s alone in results without the CPU ratio', () => {
    expect(row(0.45)).toMatchObject({ verdict: 'pass' });
  });

  it('say what the path adds to one request at a time, against the same bytes', () => {
    const [hitRow] = buildFindings(
      [
        hit('members page, cache hit ÷ bare node:http (req/s)', 0.25),
        hit('latency p50, one connection: members page, cache hit', 347),
        hit(
          'latency p50 added over bare node:http, the members page bytes: members page, cache hit',
          178,
        ),
        {
          ...hit(
            'members page, cache hit ÷ bare node:http, the members page bytes (latency p50)',
            2.13,
          ),
          interval: { low: 1.82, high: 2.45 },
        },
      ],
      options,
    ).filter((f) => f.finding === 'App overhead: members page, cache hit');
    expect(hitRow!.note).toBe(
      'one request at a time, p50 347 µs: 178 µs more than the bare node:http, the members page bytes (2.13x, 1.82–2.45)',
    );
  });

  it('say less, not a negative more, when the anchor read slower', () => {
    const [healthRow] = buildFindings(
      [
        hit('GET /health ÷ bare node:http (req/s)', 0.57),
        hit('latency p50, one connection: app GET /health', 203),
        hit('latency p50 added over bare node:http hello: app GET /health', -126),
      ],
      options,
    ).filter((f) => f.finding === 'App overhead: GET /health');
    expect(healthRow!.note).toContain('p50 203 µs: 126 µs less than the bare node:http hello');
  });
});

describe('the telemetry rows', () => {
  const overhead = figuresOf('overhead', 'telemetry overhead, members cache hit');
  const metric = 'overhead (CPU per request): metrics only (default)';
  const row = (profile: string) =>
    buildFindings(
      [{ ...overhead(metric, 22.1, '%'), interval: { low: -4.4, high: 34.8 } }],
      benchOptionsFromEnv({ PROFILE: profile }),
    ).find((f) => f.finding === 'App overhead: telemetry, metrics only')!;

  it('carry their interval, and outside the full profile why it is wide', () => {
    expect(row('full')).toMatchObject({ interval: { low: -4.4, high: 34.8 } });
    expect(row('full').note).toBe(
      'its 95% interval (-4.4–34.8) reaches across the target: not decided by this run',
    );
    expect(row('quick').note).toMatch(
      /; one process per variant in this profile, .* PROFILE=full measures three blocks of fresh processes$/,
    );
  });
});

describe('a verdict on an estimate', () => {
  const options = benchOptionsFromEnv({ SUITE: 'overhead' });
  const layer = figuresOf('overhead', 'DB layer vs the raw driver, one indexed row');
  const row = (value: number, low: number, high: number) =>
    buildFindings(
      [{ ...layer('app DB layer ÷ raw driver', value, 'x'), interval: { low, high } }],
      options,
    ).find((f) => f.finding === 'App overhead: DB layer per round trip')!;

  it('needs its whole 95% interval on one side of the target', () => {
    // the target: at most 1.25x the raw driver
    expect(row(1.05, 1.02, 1.07).verdict).toBe('pass');
    expect(row(1.4, 1.3, 1.5).verdict).toBe('fail');
    const across = row(1.2, 1.1, 1.3);
    expect(across.verdict).toBe('info');
    expect(across.note).toBe(
      'its 95% interval (1.1–1.3) reaches across the target: not decided by this run',
    );
    expect(row(1.3, 1.2, 1.4).verdict).toBe('info');
  });
});
