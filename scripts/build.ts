import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type Plugin } from 'esbuild';

/**
 * `npm run build`: the Node server as it is deployed, one ES module (`dist/server.mjs`)
 * with its migrations next to it. Run it with `NODE_ENV=production node dist/server.mjs`.
 *
 * A bundle, not `tsx`: no TypeScript compiled at startup and one file instead of some
 * 1,500 modules resolved and loaded, so a process is listening in about a third of the
 * time (0.6 s against 1.9 s here), which is what `make bench` pays for every app process
 * it starts. The native driver (`libsql`) and pino (its transports load files by path)
 * stay in node_modules, so a bundle runs from inside the tree (or next to a copy of its
 * node_modules). esbuild: the bundler tsx and vite already run on, pinned here.
 */
export const SERVER_BUNDLE = 'dist/server.mjs';

const EXTERNAL = ['libsql', '@libsql/*', 'pino', 'bufferutil', 'utf-8-validate'];

// a CommonJS dependency inside an ES module still calls require() for node's built-ins
const REQUIRE_SHIM =
  "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);";

/** Bundles `entry` (the app by default) into `outFile`; returns its absolute path. */
export async function buildServer(
  outFile = SERVER_BUNDLE,
  entry = 'system/node.ts',
): Promise<string> {
  const target = resolve(outFile);
  const dir = dirname(target);
  mkdirSync(dir, { recursive: true });
  // written beside and renamed: processes building at once never read half a file
  const partial = join(dir, `.server-${process.pid}-${Date.now()}.mjs`);
  try {
    await build({
      entryPoints: [resolve(entry)],
      outfile: partial,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      // a package's ES module build where it has one (esbuild's node default is `main`
      // first): the OpenTelemetry SDK's CommonJS build reached `@opentelemetry/api` through
      // esbuild's interop getters on every access (`api.trace`, `api.context`...), a few µs
      // per sampled request; the bundle is also 17% smaller
      mainFields: ['module', 'main'],
      external: EXTERNAL,
      banner: { js: REQUIRE_SHIM },
      // the link is written below: it must name the map's final name, not the partial's
      sourcemap: 'external',
      plugins: [withoutBrokenPackageMaps],
      logLevel: 'warning',
    });
    // the server's system/db/migrate.ts finds them next to the module:
    // `new URL('./migrations', import.meta.url)` (helper scripts migrate nothing)
    if (entry === 'system/node.ts') {
      cpSync(resolve('system/db/migrations'), join(dir, 'migrations'), { recursive: true });
    }
    appendFileSync(partial, `//# sourceMappingURL=${basename(target)}.map\n`);
    renameSync(`${partial}.map`, `${target}.map`);
    renameSync(partial, target);
  } finally {
    rmSync(partial, { force: true });
    rmSync(`${partial}.map`, { force: true });
  }
  return target;
}

const SOURCE_MAP_URL = /\/\/# sourceMappingURL=(\S+)\s*$/;

/**
 * A package file whose own source map names sources that are not there is bundled
 * without that map. esbuild chains every input's map into ours, and drizzle-orm's point
 * outside the package (`../src/entity.ts` from its root), so its frames named
 * `node_modules/src/entity.ts`, a file that does not exist, in stack traces and in the
 * bench's CPU profile summary. Without its map such a file's frames name its own
 * JavaScript (`drizzle-orm/entity.js`), which is there.
 */
const withoutBrokenPackageMaps: Plugin = {
  name: 'without-broken-package-maps',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, (args) => {
      // the contents go back to esbuild in every case: each file is read once
      const contents = readFileSync(args.path, 'utf8');
      const url = SOURCE_MAP_URL.exec(contents)?.[1];
      const broken =
        url !== undefined &&
        !url.startsWith('data:') &&
        namesMissingFiles(resolve(dirname(args.path), url));
      return { contents: broken ? contents.replace(SOURCE_MAP_URL, '') : contents, loader: 'js' };
    });
  },
};

/** Whether a package's source map names a source that is not there (unreadable: no). */
function namesMissingFiles(mapFile: string): boolean {
  try {
    const map = JSON.parse(readFileSync(mapFile, 'utf8')) as {
      sources?: string[];
      sourceRoot?: string;
    };
    const root = map.sourceRoot ?? '';
    return (map.sources ?? []).some(
      (source) => !existsSync(resolve(dirname(mapFile), root, source)),
    );
  } catch {
    return false; // esbuild warns about a map it cannot read, as it would anyway
  }
}

/**
 * The Worker (`system/worker.ts`) as workerd runs it: one ES module for the browser-like
 * platform (`wrangler` bundles the same entry with its own esbuild; the tests run this
 * one in miniflare). Only `node:` built-ins stay external: a Worker has no node_modules.
 */
export async function buildWorker(outFile = 'dist/worker.mjs'): Promise<string> {
  const target = resolve(outFile);
  mkdirSync(dirname(target), { recursive: true });
  await build({
    entryPoints: [resolve('system/worker.ts')],
    outfile: target,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    conditions: ['workerd', 'worker', 'browser'],
    // built-ins workerd provides under `nodejs_compat` (AsyncLocalStorage for the traces)
    external: ['node:*'],
    target: 'es2022',
    logLevel: 'warning',
  });
  return target;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = await buildServer();
  console.log(`built ${out}`);
}
