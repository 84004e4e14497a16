import { fileURLToPath } from 'node:url';
import { build } from 'vite';

const CONFIG = fileURLToPath(new URL('../system/client/vite.config.ts', import.meta.url));

/**
 * The React client, built by Vite: into `dist/client` (what the Node app serves at
 * `/app/`), or into `outDir` (the browser tests and benches build their own copy).
 */
export async function buildClient(outDir?: string): Promise<string> {
  const result = await build({
    configFile: CONFIG,
    logLevel: 'warn',
    ...(outDir ? { build: { outDir, emptyOutDir: true } } : {}),
  });
  void result;
  return outDir ?? fileURLToPath(new URL('../dist/client', import.meta.url));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(`built the client into ${await buildClient()}`);
}
