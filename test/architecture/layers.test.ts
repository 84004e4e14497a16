import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The house rules of docs/architecture.md, checked on the import graph of the tree:
 * arrows point down the data flow, HTTP is an adapter in `api/`, only the composition
 * root wires the OpenTelemetry SDK, the harness never imports tests, and the
 * runtime-neutral folders stay free of Node-only modules.
 */
const ROOT = resolve(import.meta.dirname, '../..');

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const path = join(dir, name);
    if (statSync(join(ROOT, path)).isDirectory()) out.push(...filesUnder(path));
    else if (/\.tsx?$/.test(name)) out.push(path);
  }
  return out;
}

/** The tree's sources, read once for every rule. */
const SOURCES = new Map(
  ['system', 'bench', 'load', 'fixtures', 'traces']
    .flatMap(filesUnder)
    .map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]),
);

/**
 * Every import specifier of a file, relative ones resolved to a tree path; `runtimeOnly`
 * leaves out `import type` and `export type` (nothing of them reaches a bundle).
 */
function importsOf(file: string, text: string, runtimeOnly = false): string[] {
  const statements = runtimeOnly
    ? /(?:^|\n)\s*(?:import|export)(?!\s+type\b)[^'";]*?from\s+['"]([^'"]+)['"]/g
    : /(?:^|\n)\s*(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]/g;
  const specifiers = [
    ...text.matchAll(statements),
    ...text.matchAll(/import\(\s*['"]([^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  return specifiers.map((s) =>
    s.startsWith('.') ? relative(ROOT, resolve(ROOT, file, '..', s)) : s,
  );
}

const GRAPH = new Map([...SOURCES].map(([file, text]) => [file, importsOf(file, text)]));
const isTest = (file: string) => file.endsWith('.test.ts');

/** Imports from files under `from` (tests excluded) into paths under any of `into`. */
function violations(
  from: string,
  into: readonly string[],
  except: (file: string) => boolean = () => false,
) {
  const found: string[] = [];
  for (const [file, imports] of GRAPH) {
    if (!file.startsWith(`${from}/`) || isTest(file) || except(file)) continue;
    for (const target of imports) {
      if (into.some((prefix) => target === prefix || target.startsWith(`${prefix}/`))) {
        found.push(`${file} -> ${target}`);
      }
    }
  }
  return found;
}

describe('layers (the import graph)', () => {
  it('reads the graph it checks', () => {
    expect(GRAPH.get('system/api/app.ts')).toContain('system/api/middleware/cache.ts');
    expect(violations('system/api', ['system/levers'])).not.toEqual([]);
  });

  it.each(['system/db', 'system/auth', 'system/levers', 'system/sync', 'system/realtime'])(
    '%s never imports the HTTP adapter (system/api)',
    (folder) => {
      expect(violations(folder, ['system/api'])).toEqual([]);
    },
  );

  it('only the composition roots import the OpenTelemetry SDK wiring (system/telemetry)', () => {
    const root = new Set(['system/node.ts', 'system/worker-app.ts', 'system/telemetry-config.ts']);
    const outside = violations(
      'system',
      ['system/telemetry'],
      (file) => root.has(file) || file.startsWith('system/telemetry/'),
    );
    expect(outside).toEqual([]);
    expect(violations('system/telemetry', ['system/env.ts', 'system/sync', 'system/api'])).toEqual(
      [],
    );
  });

  it('business code uses the OpenTelemetry API only, never an SDK package', () => {
    for (const folder of [
      'system/api',
      'system/auth',
      'system/db',
      'system/levers',
      'system/sync',
      'system/realtime',
    ]) {
      expect(
        violations(folder, ['@opentelemetry/sdk-trace', '@opentelemetry/sdk-metrics']),
      ).toEqual([]);
    }
  });

  it('the harness never imports the tests, and load/ never imports bench/', () => {
    for (const folder of ['bench', 'load', 'fixtures', 'traces', 'system']) {
      expect(violations(folder, ['test'])).toEqual([]);
    }
    expect(violations('load', ['bench'])).toEqual([]);
  });

  it('the runtime-neutral folders import no Node-only module', () => {
    const nodeOnly = (target: string) =>
      target.startsWith('node:') || ['ioredis', 'ws', 'pino', '@hono/node-server'].includes(target);
    // the small adapters `node.ts` passes in: the Redis store, the `ws` server and its wiring
    const adapters = new Set([
      'system/levers/cache-redis.ts',
      'system/realtime/node-ws.ts',
      'system/realtime/node-realtime.ts',
      'system/realtime/redis-fanout.ts',
    ]);
    const found: string[] = [];
    for (const [file, imports] of GRAPH) {
      if (!/^system\/(api|auth|levers|sync|realtime)\//.test(file) || isTest(file)) continue;
      if (adapters.has(file) || file.endsWith('-cli.ts')) continue;
      for (const target of imports) if (nodeOnly(target)) found.push(`${file} -> ${target}`);
    }
    expect(found).toEqual([]);
  });
});

describe('what the browser bundles', () => {
  it("the React client's runtime imports reach no server-only package (zod, the OpenTelemetry SDK, drizzle, libsql)", () => {
    const runtimeImports = (file: string) => importsOf(file, SOURCES.get(file) ?? '', true);
    const reached = new Set<string>();
    const queue = ['system/client/main.tsx'];
    while (queue.length > 0) {
      const file = queue.pop()!;
      for (const target of runtimeImports(file)) {
        if (reached.has(target)) continue;
        reached.add(target);
        if (SOURCES.has(target)) queue.push(target);
      }
    }
    expect(reached.has('system/client/app.tsx')).toBe(true); // the walk follows the tree
    const serverOnly = [...reached].filter((target) =>
      /^(zod|drizzle-orm|libsql|@libsql\/|@opentelemetry\/sdk-|@opentelemetry\/exporter-)/.test(
        target,
      ),
    );
    expect(serverOnly).toEqual([]);
  });
});

describe('hot-path rules', () => {
  it('request code reads context variables with c.get(), never c.var', () => {
    // Hono's `c.var` builds a new object from every variable on each access: about 3 µs
    // per request on the cached members page, where the whole app spends ~110 µs
    const found = [...SOURCES]
      .filter(
        ([file, text]) => file.startsWith('system/') && !isTest(file) && /\bc\.var\b/.test(text),
      )
      .map(([file]) => file);
    expect(found).toEqual([]);
  });
});
