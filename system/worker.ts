/**
 * The API as a Cloudflare Worker (`wrangler.toml`): the same Hono app as `node.ts`, over
 * `@libsql/client/web` to sqld or Turso, configured by the same typed environment
 * (`env.ts`) read from the Worker's vars and secrets instead of `process.env`.
 *
 * What differs from Node, and why:
 * - The levers and the session verifier live for the isolate, built on the first request
 *   (bindings arrive with requests, not at load); each request gets its own database
 *   client and app (worker-app.ts says why).
 * - No WebSocket hub and no background poll: a write drains the change log in its own
 *   request (invalidating this isolate's caches before it answers). Other isolates'
 *   memory caches learn of it only when their own writes drain the log, so on Workers
 *   only presets without a response cache are served (`baseline`, `batch`); the edge
 *   and distributed levels are what make caching correct across isolates.
 * - Coalescing shares one request's database promise with concurrent requests; workerd
 *   forbids finishing one request's I/O in another, so presets that coalesce are refused.
 * - Telemetry: `@opentelemetry/api` without an SDK (no-op) for now.
 *
 * Bad configuration answers every request with a 500 and the JSON error naming the
 * variables, as `node.ts` refuses to start. The app itself is in `worker-app.ts`.
 */
export interface WorkerBindings {
  [variable: string]: unknown;
}

type App = import('./worker-app.ts').WorkerApp;

/** The isolate's app, once one request has finished building it. */
let ready: App | undefined;

export default {
  async fetch(request: Request, bindings: WorkerBindings): Promise<Response> {
    let app = ready;
    if (!app) {
      // Requests that arrive before the isolate's app is ready each build their own rather
      // than wait on one build: workerd cancels a request that waits on another request's
      // I/O. The first to finish serves every later request. Imported here, not at load:
      // workerd forbids some work in global scope (a dependency aborts an AbortController
      // when its module is evaluated), and esbuild evaluates a dynamically imported module
      // when it is first imported.
      try {
        const { buildWorkerApp } = await import('./worker-app.ts');
        app = await buildWorkerApp(bindings);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return Response.json(
          { error: { code: 'configuration', message } },
          { status: 500, headers: { 'cache-control': 'no-store' } },
        );
      }
      ready ??= app;
    }
    return app.fetch(request);
  },
};
