import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasExited, stopChild } from './child.ts';
import { freePort } from './ports.ts';
import { requireTool } from './tools.ts';

/** A real Prometheus (Debian package) scraping `targets` every `intervalSec`, on loopback. */
export interface PrometheusServer {
  readonly url: string;
  /** Instant query; returns the first sample's value as a number (NaN if none). */
  query(promql: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startPrometheus(
  targets: string[],
  intervalSec = 1,
  /** OpenMetrics files (with timestamps) loaded first, as `promtool` backfills them. */
  backfill: readonly string[] = [],
): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  for (const file of backfill) {
    execFileSync(
      requireTool('promtool'),
      ['tsdb', 'create-blocks-from', 'openmetrics', file, join(dir, 'data')],
      { stdio: 'pipe' },
    );
  }
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      `  scrape_interval: ${intervalSec}s`,
      `  evaluation_interval: ${intervalSec}s`,
      'scrape_configs:',
      '  - job_name: dataflow',
      '    metrics_path: /metrics',
      '    static_configs:',
      `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(
    requireTool('prometheus'),
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.on('error', () => {});
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (hasExited(child) || child.pid === undefined) {
      throw new Error(`prometheus did not start: ${stderr}`);
    }
    try {
      if ((await fetch(`${url}/-/ready`)).ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`prometheus not ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async query(promql) {
      const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
      const body = (await res.json()) as { data?: { result?: Array<{ value: [number, string] }> } };
      const value = body.data?.result?.[0]?.value?.[1];
      return value === undefined ? Number.NaN : Number(value);
    },
    async stop() {
      await stopChild(child, 5000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
