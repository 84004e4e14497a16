/**
 * The API as a Cloudflare Worker (`wrangler.toml`): the same Hono app as `node.ts`, over
 * `@libsql/client/web` to sqld or Turso, configured by the same typed environment
 * (`env.ts`) read from the Worker's vars and secrets instead of `process.env`.
 *
 * What differs from Node, and why:
 * - The session verifier and the memory level's entries live for the isolate, built on
 *   the first request (bindings arrive with requests, not at load); each request gets its
 *   own database client, levers and app (worker-app.ts says why).
 * - Each organization has a Durable Object (`OrgHub`, worker-org.ts): its generation keys
 *   every cache entry, so caches at every level stay correct across isolates and colos,
 *   and it is the org's WebSocket hub (`GET /ws`, Hibernation API). A write advances the
 *   objects of the orgs it touched before it answers.
 * - Coalescing is off on Workers: workerd forbids finishing one request's I/O in another.
 * - Telemetry: the same spans, exported as OTLP/JSON with `fetch` after each response
 *   (`ctx.waitUntil`, telemetry/worker-telemetry.ts) when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
 *
 * Bad configuration answers every request with a 500 and the JSON error naming the
 * variables, as `node.ts` refuses to start. The app itself is in `worker-app.ts`.
 */
export { OrgHub } from './worker-org.ts';

export interface WorkerBindings {
  [variable: string]: unknown;
}

type App = import('./worker-app.ts').WorkerApp;

/** The isolate's app, once one request has finished building it. */
let ready: App | undefined;

export default {
  async fetch(
    request: Request,
    bindings: WorkerBindings,
    ctx: import('./worker-app.ts').WaitUntil,
  ): Promise<Response> {
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
    return app.fetch(request, ctx);
  },
};
