import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTsxCli } from '../support/cli.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const run = (args: string[], env: Record<string, string> = {}) =>
  runTsxCli('load/webhook-sender-cli.ts', args, { env });

describe('npm run webhooks (the sender CLI)', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.cleanup());

  it('sends a seeded storm with duplicates, reordering, stale, forged and malformed deliveries', async () => {
    const { code, stdout } = await run([
      'storm',
      '--url',
      server.url,
      '--secret',
      server.webhookSecret,
      '--count',
      '200',
      '--seed',
      '3',
      '--duplicates',
      '0.5',
      '--reorder',
      '0.3',
      '--stale',
      '0.2',
      '--bad-signatures',
      '0.05',
      '--malformed',
      '0.05',
      '--json',
    ]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    expect(report.unexpected).toBe(0);
    expect(report.sentByKind.bad_signature).toBe(10);
    expect(report.sentByKind.malformed).toBe(10);
    expect(report.byStatus['400']).toBe(10);
    expect(report.byOutcome.duplicate).toBeGreaterThan(0);
    expect(report.byOutcome.stale).toBeGreaterThan(0);
    expect(report.expectedEndState.users.total).toBeGreaterThan(0);
  });

  it('sends a single event of a given type', async () => {
    const { code, stdout } = await run([
      'send',
      '--url',
      server.url,
      '--secret',
      server.webhookSecret,
      '--type',
      'organization.created',
    ]);
    expect(code).toBe(0);
    expect(stdout).toContain('"applied":1');
  });

  it('refuses bad input with exit 2, naming the field and value, and sends nothing', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['storm', '--url', server.url, '--count=-3'], /--count must be an integer >= 1, got "-3"/],
      [
        ['storm', '--url', server.url, '--reorder', '2'],
        /--reorder must be a number between 0 and 1, got "2"/,
      ],
      [['storm', '--url', server.url, '--colour', 'red'], /Unknown option '--colour'/],
      [['send', '--url', server.url, '--type', 'user.exploded'], /--type must be one of/],
      [
        ['storm', '--url', 'http://10.1.2.3:8787', '--secret', 'whsec_x'],
        /refusing non-loopback target/,
      ],
      [['blast'], /storm or send/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await run(args, {
        CLERK_WEBHOOK_SIGNING_SECRET: server.webhookSecret,
      });
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toMatch(message);
    }
  });
});
