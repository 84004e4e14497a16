import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userEvent } from '../../fixtures/clerk/events.ts';
import { signedHeaders } from '../../load/webhook-sender.ts';
import type { User } from '../../system/db/schema.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/**
 * Over real HTTP the webhook body is read from Node's request directly (node-body.ts):
 * the same answers as the Web way, the limit enforced from Content-Length and while
 * reading a chunked body, before any signature work.
 */
describe('POST /webhooks/clerk over HTTP (the Node body reader)', () => {
  let server: TestServer & { cleanup(): Promise<void> };
  beforeAll(async () => {
    // no background poll: the round trips counted are the test's own
    server = await startTestServer({ WEBHOOK_BODY_LIMIT_BYTES: '2048', CHANGE_POLL_MS: '600000' });
  });
  afterAll(() => server?.cleanup());

  const user = (id: string, padding = ''): User => ({
    id,
    email: `${id}@example.com`,
    firstName: `First${padding}`,
    lastName: 'Last',
    imageUrl: null,
    publicMetadata: '{}',
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    deletedAt: null,
  });
  const send = (body: string, headers: Record<string, string>, chunked = false) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const url = new URL('/webhooks/clerk', server.url);
      const req = request(
        url,
        {
          method: 'POST',
          headers: chunked
            ? { ...headers, 'transfer-encoding': 'chunked' }
            : { ...headers, 'content-length': String(Buffer.byteLength(body)) },
        },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => {
            text += c.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      if (chunked) {
        for (let i = 0; i < body.length; i += 500) req.write(body.slice(i, i + 500));
        req.end();
      } else req.end(body);
    });

  it('a signed delivery is applied, with the raw body verified as sent', async () => {
    const body = JSON.stringify(userEvent('user.created', user('user_nodebody1'), Date.now()));
    const res = await send(body, signedHeaders(server.webhookSecret, 'msg_nodebody1', body));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ status: 'applied', svixId: 'msg_nodebody1' });
    // a chunked body of the same kind is read whole
    const chunkedBody = JSON.stringify(
      userEvent('user.created', user('user_nodebody2', 'x'.repeat(900)), Date.now()),
    );
    const chunked = await send(
      chunkedBody,
      signedHeaders(server.webhookSecret, 'msg_nodebody2', chunkedBody),
      true,
    );
    expect(JSON.parse(chunked.body)).toMatchObject({ status: 'applied' });
  });

  it('a body over the limit is a 413, declared or chunked, and nothing is written', async () => {
    const before = server.database.stats().roundTrips;
    const big = JSON.stringify(
      userEvent('user.created', user('user_nodebody3', 'y'.repeat(4000)), Date.now()),
    );
    const headers = signedHeaders(server.webhookSecret, 'msg_nodebody3', big);
    for (const chunked of [false, true]) {
      const res = await send(big, headers, chunked);
      expect(res.status).toBe(413);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'payload_too_large' } });
    }
    expect(server.database.stats().roundTrips - before).toBe(0);
  });
});
