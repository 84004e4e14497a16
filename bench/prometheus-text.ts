/**
 * Reading the app's own `/metrics` (Prometheus text) around a load run: server-side
 * figures (DB round trips, cache results, coalescing roles, memory) come from the app,
 * not from the load generator's guesses.
 *
 * A series that is not there is an error, never a zero: a renamed metric would
 * otherwise read as "0 queries" and pass every gate. Only the scrape taken *before*
 * some traffic may lack a series (OpenTelemetry exports an instrument once it has
 * recorded something); `delta` allows exactly that.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Samples {
  readonly samples: readonly Sample[];
  /** Every series name present: sampled, or declared by a `# TYPE` line. */
  readonly names: ReadonlySet<string>;
}

export class MissingSeriesError extends Error {
  override readonly name = 'MissingSeriesError';
}

const HISTOGRAM_SUFFIXES = ['_bucket', '_sum', '_count'];

export function parsePrometheusText(text: string): Samples {
  const samples: Sample[] = [];
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('#')) {
      const type = /^# TYPE ([a-zA-Z_:][\w:]*) (\w+)/.exec(line);
      if (type) {
        names.add(type[1]!);
        if (type[2] === 'histogram' || type[2] === 'summary') {
          for (const suffix of HISTOGRAM_SUFFIXES) names.add(`${type[1]}${suffix}`);
        }
      }
      continue;
    }
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const m of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[m[1]!] = unescapeLabel(m[2]!);
    }
    names.add(match[1]!);
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return { samples, names };
}

/** The text format escapes `\`, `"` and newlines in label values. */
function unescapeLabel(value: string): string {
  return value.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/**
 * Sum of a series' samples whose labels include `where` (0 when the series exists and
 * no sample matches). Throws `MissingSeriesError` when the series is not there at all.
 */
export function sum(scrape: Samples, name: string, where: Record<string, string> = {}): number {
  if (!scrape.names.has(name)) {
    throw new MissingSeriesError(
      `series ${name} is not in the scrape (renamed, or never recorded?); present: ${[
        ...scrape.names,
      ]
        .filter((n) => n.startsWith(name.split('_')[0] ?? name))
        .slice(0, 8)
        .join(', ')}`,
    );
  }
  let total = 0;
  for (const s of scrape.samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/**
 * How much a series grew between two scrapes around some traffic. `after` must have
 * it (it counted that traffic); `before` may not have it yet.
 */
export function delta(
  before: Samples,
  after: Samples,
  name: string,
  where: Record<string, string> = {},
): number {
  const grown = sum(after, name, where);
  return before.names.has(name) ? grown - sum(before, name, where) : grown;
}

export async function scrape(baseUrl: string): Promise<Samples> {
  const res = await fetch(`${baseUrl}/metrics`);
  if (!res.ok) throw new Error(`GET ${baseUrl}/metrics answered ${res.status}`);
  return parsePrometheusText(await res.text());
}
