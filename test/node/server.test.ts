import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../load/infra/ports.ts';
import { testKeys } from '../support/harness.ts';

// The Node entry as an operator runs it: a real process, real port, real signals.
describe('system/node.ts', () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  let output = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dataflow-node-'));
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, ['--import', 'tsx', 'system/node.ts'], {
      env: {
        ...process.env,
        PORT: String(port),
        DATABASE_URL: `file:${join(dir, 'app.db')}`,
        DATABASE_AUTH_TOKEN: 'super-secret-token',
        CLERK_JWT_KEY: testKeys().publicKey,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    const deadline = Date.now() + 20_000;
    while (!output.includes('"listening"')) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`server did not start: ${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  });

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates at startup and reports ready', async () => {
    const res = await fetch(`${url}/ready`);
    expect(res.status).toBe(200);
  });

  it('prints the effective config at startup with secrets masked', () => {
    expect(output).toContain('"config"');
    expect(output).toContain('"DATABASE_AUTH_TOKEN":"***"');
    expect(output).not.toContain('super-secret-token');
    expect(output).not.toContain('BEGIN PUBLIC KEY');
  });

  it('writes an access line per request, with the route and status and no header value', async () => {
    const res = await fetch(`${url}/health`, {
      headers: { authorization: 'Bearer access-line-secret' },
    });
    expect(res.status).toBe(200);
    const deadline = Date.now() + 5_000;
    const line = () =>
      output.split('\n').find((l) => l.includes('"msg":"request"') && l.includes('"/health"'));
    while (!line() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(JSON.parse(line()!)).toMatchObject({
      method: 'GET',
      route: '/health',
      status: 200,
      service: 'dataflow-api',
    });
    expect(output).not.toContain('access-line-secret');
  });

  it('drains and exits 0 on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"stopped"');
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });
});

describe('startup with a bad environment', () => {
  it('exits 2 and names the variable', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'system/node.ts'], {
      env: { ...process.env, PORT: 'not-a-port' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('PORT="not-a-port"');
  });
});
