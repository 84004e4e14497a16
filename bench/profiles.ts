import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SourceMapConsumer } from 'source-map-js';

/**
 * Where a profiled process spent its CPU (`CPU_PROFILE=1`), in the run's report: the self
 * time of V8's `.cpuprofile` samples by where the code comes from (an npm package, an app
 * file, a Node module, a native frame such as `writev` or the garbage collector) and by
 * function, each frame of a bundle read through the bundle's source map. The call tree
 * stays in the file, for Chrome DevTools or speedscope; this says at a glance which
 * part of the stack a missed target's time goes to, in the same run.
 */
export interface ProfileSummary {
  /** The process's folder under `profiles/`, without a block suffix (blocks are summed). */
  process: string;
  /** V8's thread id from the file names: 0 is the main thread. */
  thread: number;
  /** How many `.cpuprofile` files were summed (one per block of fresh processes). */
  files: number;
  /** Self time of the samples that were not idle, ms. */
  busyMs: number;
  /** Self time by the code's origin, largest first: every origin (they sum to `busyMs`). */
  bySource: Share[];
  /** Self time by function (`name source:line`), largest first. */
  byFunction: Share[];
}

export interface Share {
  name: string;
  ms: number;
  /** Of `busyMs`. */
  share: number;
}

/**
 * What one process's CPU per request has over another's, origin by origin: each
 * profile's shares applied to the CPU per request measured for it in the same run (the
 * profiles cover the processes' whole lives, start-up included; processes that start
 * alike and serve alike cancel that out). The differences add up to the difference of
 * the two CPU figures.
 */
export interface ProfileComparison {
  /** What the second process adds, e.g. `traces at 10% over metrics only`. */
  name: string;
  base: { process: string; cpuPerRequestUs: number };
  other: { process: string; cpuPerRequestUs: number };
  /** By origin, µs per request, largest difference first. */
  byOrigin: Array<{ name: string; baseUs: number; otherUs: number; differenceUs: number }>;
}

export function compareProfiles(
  name: string,
  base: { summary: ProfileSummary; cpuPerRequestUs: number },
  other: { summary: ProfileSummary; cpuPerRequestUs: number },
): ProfileComparison {
  const perRequest = (side: typeof base) =>
    new Map(side.summary.bySource.map((s) => [s.name, s.share * side.cpuPerRequestUs]));
  const a = perRequest(base);
  const b = perRequest(other);
  const byOrigin = [...new Set([...a.keys(), ...b.keys()])]
    .map((origin) => {
      const baseUs = a.get(origin) ?? 0;
      const otherUs = b.get(origin) ?? 0;
      return { name: origin, baseUs, otherUs, differenceUs: otherUs - baseUs };
    })
    .sort((x, y) => y.differenceUs - x.differenceUs);
  return {
    name,
    base: { process: base.summary.process, cpuPerRequestUs: base.cpuPerRequestUs },
    other: { process: other.summary.process, cpuPerRequestUs: other.cpuPerRequestUs },
    byOrigin,
  };
}

/** V8's `.cpuprofile` (what `node --cpu-prof` writes), the parts read here. */
interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples: number[];
  timeDeltas: number[];
}

interface CallFrame {
  functionName: string;
  url: string;
  /** 0-based, as the column. */
  lineNumber: number;
  columnNumber: number;
}

/** `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile` */
const PROFILE_FILE = /^CPU\.\d+\.\d+\.\d+\.(\d+)\.\d+\.cpuprofile$/;
const BLOCK_SUFFIX = /-block\d+$/;

/**
 * Every profile under `profilesDir` (`<process>/CPU…cpuprofile`), summed per process and
 * thread. `root`: where app paths are shown from (the repository).
 */
export function summarizeProfiles(
  profilesDir: string,
  options: {
    /** Functions kept per profile; origins are all kept. @default 12 */
    top?: number;
    root?: string;
    onUnreadable?: (file: string, error: Error) => void;
  } = {},
): ProfileSummary[] {
  if (!existsSync(profilesDir)) return [];
  const maps = new SourceMaps(options.root ?? process.cwd());
  const sums = new Map<
    string,
    { process: string; thread: number; files: number; self: SelfTime }
  >();
  for (const dir of readdirSync(profilesDir, { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const name = dir.name.replace(BLOCK_SUFFIX, '');
    for (const file of readdirSync(join(profilesDir, dir.name)).sort()) {
      const thread = PROFILE_FILE.exec(file)?.[1];
      if (thread === undefined) continue;
      const key = `${name}\0${thread}`;
      let sum = sums.get(key);
      if (!sum) {
        sum = { process: name, thread: Number(thread), files: 0, self: new SelfTime() };
        sums.set(key, sum);
      }
      let profile: CpuProfile;
      try {
        profile = JSON.parse(readFileSync(join(profilesDir, dir.name, file), 'utf8')) as CpuProfile;
      } catch (error) {
        // a process killed before it finished writing: the others still say their part
        options.onUnreadable?.(join(dir.name, file), error as Error);
        continue;
      }
      sum.self.add(profile, maps);
      sum.files += 1;
    }
  }
  const top = options.top ?? 12;
  return [...sums.values()]
    .filter((sum) => sum.files > 0)
    .sort((a, b) => a.process.localeCompare(b.process) || a.thread - b.thread)
    .map(({ process, thread, files, self }) => ({
      process,
      thread,
      files,
      busyMs: self.busyUs / 1000,
      bySource: self.shares(self.bySource, Number.POSITIVE_INFINITY),
      byFunction: self.shares(self.byFunction, top),
    }));
}

/** Self time in µs, accumulated over profiles. */
class SelfTime {
  busyUs = 0;
  readonly bySource = new Map<string, number>();
  readonly byFunction = new Map<string, number>();

  add(profile: CpuProfile, maps: SourceMaps): void {
    const frames = new Map(profile.nodes.map((node) => [node.id, node.callFrame]));
    // a sample lasts until the next one: timeDeltas[i] is the gap before sample i
    const selfUs = new Map<number, number>();
    for (let i = 0; i < profile.samples.length; i++) {
      const id = profile.samples[i]!;
      selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i + 1] ?? 0));
    }
    for (const [id, us] of selfUs) {
      const frame = frames.get(id);
      if (!frame || frame.functionName === '(idle)' || us === 0) continue;
      const { source, fn } = maps.locate(frame);
      this.busyUs += us;
      this.bySource.set(source, (this.bySource.get(source) ?? 0) + us);
      this.byFunction.set(fn, (this.byFunction.get(fn) ?? 0) + us);
    }
  }

  shares(map: Map<string, number>, top: number): Share[] {
    return [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({
        name,
        ms: us / 1000,
        share: this.busyUs > 0 ? us / this.busyUs : 0,
      }));
  }
}

/** Frames to their origin, through the source map beside each bundle (`x.mjs.map`). */
class SourceMaps {
  readonly #consumers = new Map<string, { consumer: SourceMapConsumer; dir: string } | null>();
  constructor(readonly root: string) {}

  locate(frame: CallFrame): { source: string; fn: string } {
    const name = frame.functionName || '(anonymous)';
    // V8's own frames ((garbage collector), (program)) and native bindings (writev)
    if (frame.url === '') return { source: name, fn: name };
    if (frame.url.startsWith('node:')) {
      return { source: frame.url, fn: `${name} ${frame.url}:${frame.lineNumber + 1}` };
    }
    let path = frame.url.startsWith('file:') ? fileURLToPath(frame.url) : frame.url;
    let line = frame.lineNumber + 1;
    const map = this.#consumer(path);
    if (map) {
      const original = map.consumer.originalPositionFor({
        line: frame.lineNumber + 1,
        column: frame.columnNumber,
      });
      if (original.source) {
        path = resolve(map.dir, original.source);
        line = original.line ?? line;
      }
    }
    const shown = this.#shown(path);
    return { source: shown.origin, fn: `${name} ${shown.path}:${line}` };
  }

  /** An npm package by its name (the innermost, when nested); anything else by its path from the root. */
  #shown(path: string): { origin: string; path: string } {
    const inPackage = /.*node_modules\/((?:@[^/]+\/)?[^/]+)(\/.*)?$/.exec(path);
    if (inPackage) return { origin: inPackage[1]!, path: `${inPackage[1]}${inPackage[2] ?? ''}` };
    const fromRoot = relative(this.root, path);
    return { origin: fromRoot, path: fromRoot };
  }

  #consumer(path: string) {
    let entry = this.#consumers.get(path);
    if (entry === undefined) {
      const mapFile = `${path}.map`;
      entry = existsSync(mapFile)
        ? {
            consumer: new SourceMapConsumer(JSON.parse(readFileSync(mapFile, 'utf8'))),
            dir: dirname(mapFile),
          }
        : null;
      this.#consumers.set(path, entry);
    }
    return entry;
  }
}

const percent = (share: number) => `${(share * 100).toFixed(1)}%`;
const threadLabel = (s: ProfileSummary) => (s.thread === 0 ? 'main thread' : `thread ${s.thread}`);

/** One line per profile, for the terminal: its busy time and largest origins. */
export function profileLines(summaries: readonly ProfileSummary[], top = 5): string[] {
  return summaries.map(
    (s) =>
      `CPU profile ${s.process} (${threadLabel(s)}${s.files > 1 ? `, ${s.files} processes` : ''}): ${Math.round(s.busyMs)} ms busy; ${s.bySource
        .slice(0, top)
        .map((x) => `${x.name} ${percent(x.share)}`)
        .join(', ')}`,
  );
}

const us = (v: number) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(1)}`;

/** The comparisons' part of the report: what grew most, then what shrank most. */
export function comparisonMarkdown(comparisons: readonly ProfileComparison[], top = 8): string[] {
  const lines: string[] = [];
  for (const c of comparisons) {
    const total = c.other.cpuPerRequestUs - c.base.cpuPerRequestUs;
    lines.push(
      `### ${c.name}: ${us(total)} µs of CPU per request (${c.base.process} ${c.base.cpuPerRequestUs.toFixed(1)}, ${c.other.process} ${c.other.cpuPerRequestUs.toFixed(1)})`,
      '',
      `| origin | ${c.base.process}, µs per request | ${c.other.process} | difference |`,
      '| --- | ---: | ---: | ---: |',
    );
    const grew = c.byOrigin.slice(0, top);
    const shrank = c.byOrigin.slice(top).slice(-3);
    for (const o of [...grew, ...shrank]) {
      lines.push(
        `| \`${o.name.replace(/\|/g, '\\|')}\` | ${o.baseUs.toFixed(1)} | ${o.otherUs.toFixed(1)} | ${us(o.differenceUs)} |`,
      );
    }
    lines.push('');
  }
  return lines;
}

/** One line per comparison, for the terminal: the origins that grew most. */
export function comparisonLines(comparisons: readonly ProfileComparison[], top = 4): string[] {
  return comparisons.map(
    (c) =>
      `CPU profiles, ${c.name}: ${us(c.other.cpuPerRequestUs - c.base.cpuPerRequestUs)} µs per request; ${c.byOrigin
        .slice(0, top)
        .map((o) => `${o.name} ${us(o.differenceUs)}`)
        .join(', ')}`,
  );
}

/** The report's section: what each compared process adds, then each profile by origin and function. */
export function profileMarkdown(
  summaries: readonly ProfileSummary[],
  profilesDir: string,
  comparisons: readonly ProfileComparison[] = [],
): string[] {
  if (summaries.length === 0) return [];
  const lines = [
    '## Where the CPU went',
    '',
    `\`CPU_PROFILE=1\`: each profiled process's self time over its whole life, start-up and warm-up included (samples that were not idle), by where the code comes from and by function, read through the bundle's source map. The files, with their call trees, are in \`${profilesDir}/\` (open one in Chrome DevTools or speedscope).`,
    '',
    ...(comparisons.length > 0
      ? [
          "Side by side, origin by origin, in µs per request (each profile's shares applied to the CPU per request its process measured in this run):",
          '',
          ...comparisonMarkdown(comparisons),
        ]
      : []),
  ];
  for (const s of summaries) {
    lines.push(
      `### ${s.process}, ${threadLabel(s)}: ${Math.round(s.busyMs)} ms busy${s.files > 1 ? ` (${s.files} processes summed)` : ''}`,
      '',
      '| origin | share | ms | function | share | ms |',
      '| --- | ---: | ---: | --- | ---: | ---: |',
    );
    const rows = Math.max(s.byFunction.length, Math.min(s.bySource.length, 12));
    for (let i = 0; i < rows; i++) {
      const cell = (x: Share | undefined) =>
        x
          ? [`\`${x.name.replace(/\|/g, '\\|')}\``, percent(x.share), x.ms.toFixed(0)]
          : ['', '', ''];
      lines.push(`| ${[...cell(s.bySource[i]), ...cell(s.byFunction[i])].join(' | ')} |`);
    }
    lines.push('');
  }
  return lines;
}
