import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as hdr from 'hdr-histogram-js';
import { afterEach, describe, expect, it } from 'vitest';
import { runLoad } from '../../load/generator.ts';
import { fillPath, type Scenario } from '../../load/scenarios.ts';

/** A stand-in server (unit test of the generator): answers at once, except one stall. */
function server(stallOnRequest: number, stallMs: number): Promise<{ url: string; srv: Server }> {
  let n = 0;
  const srv = createServer((req, res) => {
    n++;
    const answer = () => {
      res.writeHead(req.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    if (n === stallOnRequest) setTimeout(answer, stallMs);
    else answer();
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, srv }),
    ),
  );
}

const scenario: Scenario = {
  name: 'projects-mixed',
  description: 'test',
  route: '/x',
  requests: [
    { name: 'read', method: 'GET', path: '/o/{orgId}/r', weight: 8, expect: 200 },
    { name: 'write', method: 'POST', path: '/o/{orgId}/w', body: { a: 1 }, weight: 2, expect: 201 },
  ],
  models: [],
};

let srv: Server | undefined;
afterEach(() => {
  srv?.close();
  srv = undefined;
});

describe('load generator', () => {
  it('open model: a stall is charged to every request queued behind it (coordinated omission)', async () => {
    const s = await server(20, 300);
    srv = s.srv;
    const result = await runLoad({
      baseUrl: s.url,
      headers: {},
      scenario,
      vars: { orgId: 'o1' },
      model: { kind: 'open', rate: 100, maxInFlight: 1 },
      durationSec: 1,
    });
    expect(result.errors).toBe(0);
    // about 30 arrivals are scheduled during the 300 ms stall; measured from their
    // scheduled time they waited up to 300 ms, from their actual send almost nothing
    expect(result.latencyMs.p90).toBeGreaterThanOrEqual(50);
    expect(result.latencyMs.p90).toBeGreaterThan(5 * result.serviceMs!.p90);
    expect(result.latencyMs.max).toBeGreaterThanOrEqual(290);
    // the histogram kept in results.json decodes to the same distribution
    const decoded = hdr.decodeFromCompressedBase64(result.histogram);
    expect(decoded.totalCount).toBe(result.requests);
    expect(decoded.getValueAtPercentile(90) / 1000).toBeCloseTo(result.latencyMs.p90, 0);
  });

  it('closed model: follows the mix weights, counts unexpected statuses as errors', async () => {
    const s = await server(-1, 0);
    srv = s.srv;
    const result = await runLoad({
      baseUrl: s.url,
      headers: {},
      scenario: {
        ...scenario,
        requests: [
          ...scenario.requests,
          { name: 'wrong', method: 'GET', path: '/w', weight: 1, expect: 404 },
        ],
      },
      vars: { orgId: 'o1' },
      model: { kind: 'closed', connections: 4 },
      durationSec: 0.5,
      seed: 7,
    });
    const { read, write, wrong } = result.perRequest;
    expect(read!.requests + write!.requests + wrong!.requests).toBe(result.requests);
    expect(read!.requests / result.requests).toBeGreaterThan(0.6);
    expect(read!.requests / result.requests).toBeLessThan(0.85);
    expect(wrong!.errors).toBe(wrong!.requests);
    expect(result.errors).toBe(wrong!.requests);
    expect(result.serviceMs).toBeUndefined();
  });

  it('burst: sends exactly N requests at once', async () => {
    const s = await server(-1, 0);
    srv = s.srv;
    const result = await runLoad({
      baseUrl: s.url,
      headers: {},
      scenario,
      vars: { orgId: 'o1' },
      model: { kind: 'burst', requests: 50 },
      durationSec: 0,
    });
    expect(result.requests).toBe(50);
  });

  it('fills path templates and refuses a missing variable', () => {
    expect(
      fillPath('/api/orgs/{orgId}/projects/{projectId}', { orgId: 'o 1', projectId: 'p' }),
    ).toBe('/api/orgs/o%201/projects/p');
    expect(() => fillPath('/api/{projectId}', { orgId: 'o' })).toThrow(
      /no value for \{projectId\}/,
    );
  });
});
