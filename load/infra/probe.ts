import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { bundled } from './server-process.ts';

/**
 * Runs a measuring script of this tree from its bundle (`bundled()`, built as the
 * production server is), in a process of its own, in production mode: in the harness's
 * process under `tsx` every closure the measured code makes would also pay esbuild's
 * `__name` wrapper. The probe prints its result as one JSON document on stdout; each
 * line it writes to stderr goes to `onLine` (progress) as it comes.
 */
export async function runProbe<T>(
  entry: string,
  env: Record<string, string>,
  options: { signal?: AbortSignal; onLine?: (line: string) => void } = {},
): Promise<T> {
  const child = spawn(process.execPath, [await bundled(entry)], {
    env: { ...process.env, NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.signal ? { signal: options.signal } : {}),
  });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  const stderr: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    options.onLine?.(line);
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`${entry} exited with ${code}: ${stderr.slice(-5).join('\n')}`);
  return JSON.parse(stdout) as T;
}
