import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { type AnalyzeOptions, analyze, type RouteReport, type TraceReport } from './analyze.ts';
import { type FlatSpan, parseOtlpJsonLines, TraceFileError } from './otlp.ts';

/**
 * `npm run traces -- analyze <file|dir>... [--json] [--n-plus-one N] [--window-ms MS]`
 * Reads OTLP/JSON lines (ours under traces/out/, or a collector's file export) and
 * prints the per-route table, or the JSON report for other tools. Exit 2 on bad usage
 * or a file that is not a trace export.
 */
const USAGE =
  'usage: npm run traces -- analyze <file|dir>... [--json] [--n-plus-one N] [--window-ms MS]';

export function readTraceFiles(paths: readonly string[]): FlatSpan[] {
  const files: string[] = [];
  for (const path of paths) {
    let stat: ReturnType<typeof statSync>;
    try {
      stat = statSync(path);
    } catch {
      throw new TraceFileError(`${path}: no such file or directory`);
    }
    if (stat.isDirectory()) {
      const inside = readdirSync(path)
        .filter((name) => name.endsWith('.jsonl') || name.endsWith('.json'))
        .sort()
        .map((name) => join(path, name));
      if (inside.length === 0) throw new TraceFileError(`${path}: no .jsonl or .json files`);
      files.push(...inside);
    } else files.push(path);
  }
  return files.flatMap((file) => parseOtlpJsonLines(readFileSync(file, 'utf8'), file));
}

export function formatReport(report: TraceReport): string {
  const header = [
    'route',
    'requests',
    'db/req mean',
    'db/req max',
    'N+1 reqs',
    'worst N+1',
    'redundant reads',
    'p50 ms',
    'p99 ms',
    'auth ms',
    'cache ms',
    'db ms',
    'rest ms',
    'db work ms',
  ];
  const row = (r: RouteReport) => [
    r.route,
    String(r.requests),
    r.dbRoundTrips.mean.toFixed(1),
    String(r.dbRoundTrips.max),
    String(r.nPlusOne.requests),
    r.nPlusOne.worst ? `${r.nPlusOne.worst.query} x${r.nPlusOne.worst.count}` : '-',
    `${r.redundantReads}/${r.reads}`,
    r.durationMs.p50.toFixed(2),
    r.requests >= 100 ? r.durationMs.p99.toFixed(2) : `(n=${r.requests})`,
    r.criticalPathMs.auth.toFixed(2),
    r.criticalPathMs.cache.toFixed(2),
    r.criticalPathMs.db.toFixed(2),
    r.criticalPathMs.rest.toFixed(2),
    (r.workMs.db ?? 0).toFixed(2),
  ];
  const rows = [header, ...report.routes.map(row), row(report.overall)];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
  );
  lines.splice(1, 0, widths.map((w) => '-'.repeat(w)).join('  '));
  const push = report.webhookToClientMs;
  lines.push(
    '',
    `${report.traces} traces, ${report.spans} spans. p99 shown from 100 requests up.`,
    'auth/cache/db/rest: mean wall time per request on its timeline (concurrent spans of a stage count once; they add up to the duration). db work: the time of the DB spans, summed.',
    push
      ? `webhook -> WebSocket client: n=${push.samples} p50 ${push.p50.toFixed(1)} ms, p95 ${push.p95.toFixed(1)} ms, p99 ${push.p99.toFixed(1)} ms, max ${push.max.toFixed(1)} ms`
      : 'webhook -> WebSocket client: no realtime.receive spans linked to a webhook request',
  );
  return lines.join('\n');
}

function main(argv: readonly string[]): number {
  let parsed: ReturnType<typeof parseCli>;
  try {
    parsed = parseCli(argv);
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  try {
    const report = analyze(readTraceFiles(parsed.paths), parsed.options);
    console.log(parsed.json ? JSON.stringify(report, null, 2) : formatReport(report));
    return 0;
  } catch (error) {
    if (error instanceof TraceFileError) {
      console.error(error.message);
      return 2;
    }
    throw error;
  }
}

function parseCli(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      json: { type: 'boolean', default: false },
      'n-plus-one': { type: 'string' },
      'window-ms': { type: 'string' },
    },
  });
  const [command, ...paths] = positionals;
  if (command !== 'analyze') throw new Error(`unknown command ${JSON.stringify(command ?? '')}`);
  if (paths.length === 0) throw new Error('no trace files given');
  const options: AnalyzeOptions = {};
  const nPlusOne = values['n-plus-one'];
  if (nPlusOne !== undefined) {
    const n = Number(nPlusOne);
    if (!Number.isInteger(n) || n < 2) throw new Error(`--n-plus-one=${nPlusOne}: an integer >= 2`);
    options.nPlusOneMin = n;
  }
  const window = values['window-ms'];
  if (window !== undefined) {
    const ms = Number(window);
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`--window-ms=${window}: a number >= 0`);
    options.redundantWindowMs = ms;
  }
  return { paths, json: values.json, options };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
