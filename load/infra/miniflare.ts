import { Miniflare } from 'miniflare';

/** The compatibility settings of wrangler.toml (a test checks they match). */
export const WORKER_COMPATIBILITY = {
  compatibilityDate: '2025-01-01',
  compatibilityFlags: ['nodejs_compat'],
};

export interface LocalWorker {
  /** The first isolate's origin, on 127.0.0.1. */
  url: string;
  /** A request to isolate `index` (0: the one at `url`). */
  fetch(index: number, path: string, init?: RequestInit): Promise<Response>;
  dispose(): Promise<void>;
}

/**
 * The Worker bundle in miniflare (the real workerd) with the bindings of wrangler.toml:
 * the `ORG_HUB` Durable Object and the `CACHE_KV` namespace, in memory. `isolates > 1`
 * runs the same script as that many Workers (separate isolates: separate memory) sharing
 * one `ORG_HUB` class and one KV namespace, as isolates of one deployment do, so a test
 * can write through one and read through another.
 */
export async function startLocalWorker(options: {
  scriptPath: string;
  bindings: Record<string, string>;
  isolates?: number;
}): Promise<LocalWorker> {
  const names = Array.from({ length: options.isolates ?? 1 }, (_, i) => `api${i}`);
  const mf = new Miniflare({
    workers: names.map((name) => ({
      name,
      modules: true,
      scriptPath: options.scriptPath,
      ...WORKER_COMPATIBILITY,
      bindings: options.bindings,
      durableObjects: { ORG_HUB: { className: 'OrgHub', scriptName: names[0]!, useSQLite: true } },
      kvNamespaces: { CACHE_KV: 'dataflow-cache' },
    })),
    port: 0,
    host: '127.0.0.1',
    cf: false,
  });
  const url = (await mf.ready).origin;
  return {
    url,
    async fetch(index, path, init) {
      if (index === 0) return fetch(url + path, init);
      const worker = (await mf.getWorker(names[index]!)) as unknown as {
        fetch(url: string, init?: RequestInit): Promise<Response>;
      };
      // miniflare's own Response: read it as a standard one
      const res = await worker.fetch(url + path, init);
      return new Response(
        res.status === 101 || res.status === 204 || res.status === 304
          ? null
          : await res.arrayBuffer(),
        {
          status: res.status,
          headers: res.headers,
        },
      );
    },
    dispose: () => mf.dispose(),
  };
}
