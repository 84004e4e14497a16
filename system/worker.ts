/**
 * The API as a Cloudflare Worker (`wrangler.toml`): the same Hono app as `node.ts`, over
 * `@libsql/client/web` to sqld or Turso, configured by the same typed environment
 * (`env.ts`) read from the Worker's vars and secrets instead of `process.env`.
 *
 * What differs from Node, and why:
 * - The database client, the levers and the session verifier live for the isolate; the
 *   app is built on the first request (bindings arrive with requests, not at load).
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

type App = Awaited<ReturnType<typeof import('./worker-app.ts').buildWorkerApp>>;

let built: Promise<App> | undefined;

export default {
  async fetch(request: Request, bindings: WorkerBindings): Promise<Response> {
    // imported here, not at load: workerd forbids some work in global scope (a dependency
    // aborts an AbortController when its module is evaluated), and esbuild evaluates a
    // dynamically imported module when it is first imported
    built ??= import('./worker-app.ts')
      .then(({ buildWorkerApp }) => buildWorkerApp(bindings))
      .catch((error: unknown) => {
        built = undefined;
        throw error;
      });
    let app: App;
    try {
      app = await built;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return Response.json(
        { error: { code: 'configuration', message } },
        { status: 500, headers: { 'cache-control': 'no-store' } },
      );
    }
    return app.fetch(request);
  },
};
