import { sloLines } from '../bench/budgets.ts';
import { dashboard, type Panel, quantile, rate, stat, timeseries } from './panels.ts';

/**
 * The dashboards, as code. Every series is one the app exports at `GET /metrics`
 * (names in `system/telemetry/metrics.ts`, in Prometheus form); `make dashboards`
 * writes them to `dashboards/json/`, `make dashboards-verify` runs every query against
 * a real Prometheus scraping the app under load.
 */
const HTTP = 'http_server_request_duration';
const byRoute = ['http_route'];

const MEMBERS_ROUTE = '/api/orgs/:orgId/members';

/**
 * part / whole, 0 (not "no data") while the part has no series yet: a counter with a
 * label value that never happened (no 5xx, no follower) is absent, not zero.
 */
const share = (part: string, whole: string) => `(${part} or ${whole} * 0) / ${whole}`;

/** The members page's latency SLO lines, from the budgets the gate enforces. */
const membersSlo = sloLines('recommended')
  .filter((l) => l.route === MEMBERS_ROUTE)
  .map((l) => ({ value: l.seconds, label: l.label }));

function overview() {
  const rows: Array<{ title: string; panels: Panel[] }> = [
    {
      title: 'Multiple round trips',
      panels: [
        timeseries({
          title: 'DB queries per request, by route',
          description:
            'Round trips one request makes to the database (mean over the interval). Batching brings the members page from 52 to 2; the gate holds it there.',
          unit: 'short',
          queries: [
            {
              expr: `sum by (http_route) (${rate('dataflow_db_queries_per_request_sum')}) / sum by (http_route) (${rate('dataflow_db_queries_per_request_count')})`,
              legend: '{{http_route}}',
            },
          ],
        }),
        timeseries({
          title: 'Members page latency against its SLO',
          description:
            'p50/p95/p99 of the members page from the duration histogram, with the budget lines of bench/budgets.ts (recommended preset, reference machine).',
          unit: 's',
          queries: [0.5, 0.95, 0.99].map((q) => ({
            expr: quantile(q, HTTP, [], `{http_route="${MEMBERS_ROUTE}"}`),
            legend: `p${q * 100}`,
          })),
          lines: membersSlo,
        }),
      ],
    },
    {
      title: 'Cache invalidation overhead',
      panels: [
        timeseries({
          title: 'Cache hit ratio',
          description:
            'Share of cache lookups that hit, per level. A write invalidates precisely what it changed.',
          unit: 'percentunit',
          queries: [
            {
              expr: `sum by (dataflow_cache_level) (${rate('dataflow_cache_lookups_total{dataflow_cache_result="hit"}')}) / sum by (dataflow_cache_level) (${rate('dataflow_cache_lookups_total')})`,
              legend: '{{dataflow_cache_level}}',
            },
          ],
        }),
        timeseries({
          title: 'Invalidations',
          description: 'Cache entries dropped per second by invalidation mode (precise or group).',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (dataflow_cache_invalidation) (${rate('dataflow_cache_invalidations_total')})`,
              legend: '{{dataflow_cache_invalidation}}',
            },
          ],
        }),
      ],
    },
    {
      title: 'Redundant data fetching',
      panels: [
        timeseries({
          title: 'Coalesced share',
          description:
            'Share of requests that waited for an identical request in flight instead of reading again.',
          unit: 'percentunit',
          queries: [
            {
              expr: share(
                `sum(${rate('dataflow_coalesce_requests_total{dataflow_coalesce_role="follower"}')})`,
                `sum(${rate('dataflow_coalesce_requests_total')})`,
              ),
              legend: 'followers',
            },
          ],
        }),
      ],
    },
    {
      title: 'Connection management and memory pressure',
      panels: [
        timeseries({
          title: 'DB round trips per second',
          description: 'What the app puts on its database connection: every statement it sends.',
          unit: 'ops',
          queries: [
            { expr: `sum(${rate('dataflow_db_round_trips_total')})`, legend: 'round trips/s' },
          ],
        }),
        timeseries({
          title: 'Resident memory',
          description:
            'RSS of each app process: caches and sockets are bounded, so this should level off.',
          unit: 'bytes',
          queries: [{ expr: 'process_memory_rss', legend: '{{instance}}' }],
        }),
      ],
    },
    {
      title: 'WebSocket limits and event processing',
      panels: [
        stat({
          title: 'Open sockets',
          description: 'WebSocket connections held, all processes.',
          unit: 'short',
          queries: [{ expr: 'sum(realtime_connections)' }],
        }),
        stat({
          title: 'Webhooks applied per second',
          description: 'Verified Clerk events applied to the database.',
          unit: 'ops',
          queries: [{ expr: `sum(${rate('sync_webhook_events_total{sync_outcome="applied"}')})` }],
        }),
        timeseries({
          title: 'Commit to push lag p99',
          description:
            'From a change committing to its fan-out to the sockets of its organization.',
          unit: 's',
          queries: [{ expr: quantile(0.99, 'realtime_delivery_lag'), legend: 'p99' }],
        }),
      ],
    },
  ];
  return dashboard(
    'dataflow-findings',
    'Dataflow: audit findings',
    "Which of the audit's findings is happening now? One row per finding (round trips, invalidation, redundant fetching, connections, memory, WebSocket limits, event processing) with the metric that measures it live.",
    rows,
  );
}

function api() {
  return dashboard(
    'dataflow-api-red',
    'Dataflow: API (RED)',
    'Is the API healthy? Rate, errors and duration per route template, DB round trips per request, requests in flight.',
    [
      {
        title: 'Rate and errors',
        panels: [
          timeseries({
            title: 'Requests per second, by route',
            description: 'Requests answered per second, by route template (never raw paths).',
            unit: 'reqps',
            queries: [
              { expr: `sum by (http_route) (${rate(`${HTTP}_count`)})`, legend: '{{http_route}}' },
            ],
          }),
          timeseries({
            title: 'Error ratio, by route',
            description: 'Share of answers with a 5xx status, by route.',
            unit: 'percentunit',
            queries: [
              {
                expr: share(
                  `sum by (http_route) (${rate(`${HTTP}_count{http_response_status_code=~"5.."}`)})`,
                  `sum by (http_route) (${rate(`${HTTP}_count`)})`,
                ),
                legend: '{{http_route}}',
              },
            ],
          }),
        ],
      },
      {
        title: 'Duration',
        panels: [0.5, 0.95, 0.99].map((q) =>
          timeseries({
            title: `Latency p${q * 100}, by route`,
            description: `The p${q * 100} of request duration per route, from the histogram's summed bucket rates.`,
            unit: 's',
            queries: [{ expr: quantile(q, HTTP, byRoute), legend: '{{http_route}}' }],
          }),
        ),
      },
      {
        title: 'Database and concurrency',
        panels: [
          timeseries({
            title: 'DB round trips per request, by route',
            description: 'Mean statements per request: the N+1 shows here first.',
            unit: 'short',
            queries: [
              {
                expr: `sum by (http_route) (${rate('dataflow_db_queries_per_request_sum')}) / sum by (http_route) (${rate('dataflow_db_queries_per_request_count')})`,
                legend: '{{http_route}}',
              },
            ],
          }),
          timeseries({
            title: 'DB operation p95, by query',
            description: 'p95 of one database round trip per query shape (db.query.summary).',
            unit: 's',
            queries: [
              {
                expr: quantile(0.95, 'db_client_operation_duration', ['db_query_summary']),
                legend: '{{db_query_summary}}',
              },
            ],
          }),
          timeseries({
            title: 'Requests in flight',
            description: 'Requests being served right now, per process.',
            unit: 'short',
            queries: [
              { expr: 'sum by (instance) (http_server_active_requests)', legend: '{{instance}}' },
            ],
          }),
        ],
      },
    ],
  );
}

function levers() {
  return dashboard(
    'dataflow-levers',
    'Dataflow: levers',
    'What are the levers doing? Cache hits per level, invalidations, coalescing, batch size and wait, retries, the database breaker.',
    [
      {
        title: 'Cache and coalescing',
        panels: [
          timeseries({
            title: 'Cache lookups, by level and result',
            description: 'Lookups per second: hits and misses per cache level.',
            unit: 'ops',
            queries: [
              {
                expr: `sum by (dataflow_cache_level, dataflow_cache_result) (${rate('dataflow_cache_lookups_total')})`,
                legend: '{{dataflow_cache_level}} {{dataflow_cache_result}}',
              },
            ],
          }),
          timeseries({
            title: 'Coalescing roles',
            description:
              'Requests per second that led, followed (shared a flight) or overflowed the coalescer.',
            unit: 'reqps',
            queries: [
              {
                expr: `sum by (dataflow_coalesce_role) (${rate('dataflow_coalesce_requests_total')})`,
                legend: '{{dataflow_coalesce_role}}',
              },
            ],
          }),
        ],
      },
      {
        title: 'Batching and recovery',
        panels: [
          timeseries({
            title: 'Batch size p50 / p95',
            description: 'Keys per batch the loaders send to the database.',
            unit: 'short',
            queries: [0.5, 0.95].map((q) => ({
              expr: quantile(q, 'dataflow_batch_size'),
              legend: `p${q * 100}`,
            })),
          }),
          timeseries({
            title: 'Batch wait p95',
            description: 'Time a key waited for its batch to be sent (waitTime).',
            unit: 's',
            queries: [{ expr: quantile(0.95, 'dataflow_batch_wait'), legend: 'p95' }],
          }),
          timeseries({
            title: 'Database breaker',
            description: 'Breaker state: 0 closed, 1 half-open, 2 open.',
            unit: 'none',
            queries: [{ expr: 'max(dataflow_breaker_state)', legend: 'state' }],
          }),
        ],
      },
    ],
  );
}

function syncRealtime() {
  return dashboard(
    'dataflow-sync-realtime',
    'Dataflow: sync and realtime',
    'Are webhooks applied and pushed on time? Webhook rate and outcomes, apply duration, lag, dead letters; sockets, frames sent and dropped, buffered bytes, delivery lag.',
    [
      {
        title: 'Webhooks',
        panels: [
          timeseries({
            title: 'Webhook events, by outcome',
            description: 'Deliveries per second: applied, duplicate, stale, ignored, dead letter.',
            unit: 'ops',
            queries: [
              {
                expr: `sum by (sync_outcome) (${rate('sync_webhook_events_total')})`,
                legend: '{{sync_outcome}}',
              },
            ],
          }),
          timeseries({
            title: 'Apply duration p95 and lag p95',
            description: 'Apply: verify to commit. Lag: the Svix timestamp to commit.',
            unit: 's',
            queries: [
              { expr: quantile(0.95, 'sync_webhook_apply_duration'), legend: 'apply p95' },
              { expr: quantile(0.95, 'sync_webhook_lag'), legend: 'lag p95' },
            ],
          }),
          timeseries({
            title: 'Write batches per group commit',
            description:
              'Concurrent writes (webhook deliveries, project writes) sharing one transaction: near 1 means each write pays its own commit.',
            unit: 'short',
            queries: [
              {
                expr: `sum(${rate('dataflow_db_group_commit_batches_sum')}) / sum(${rate('dataflow_db_group_commit_batches_count')})`,
                legend: 'mean',
              },
            ],
          }),
        ],
      },
      {
        title: 'Realtime',
        panels: [
          timeseries({
            title: 'Changes sent and dropped per second',
            description:
              'Changes written to sockets, and dropped by backpressure (the socket gets a reset later).',
            unit: 'ops',
            queries: [
              { expr: `sum(${rate('realtime_messages_sent_total')})`, legend: 'sent' },
              { expr: `sum(${rate('realtime_messages_dropped_total')})`, legend: 'dropped' },
            ],
          }),
          timeseries({
            title: 'Sockets and buffered bytes',
            description:
              'Open sockets, and bytes held in the process for slow sockets (bounded by the high-water mark per socket).',
            unit: 'short',
            queries: [
              { expr: 'sum(realtime_connections)', legend: 'sockets' },
              { expr: 'sum(realtime_buffered)', legend: 'buffered bytes' },
            ],
          }),
          timeseries({
            title: 'Commit to fan-out lag p50 / p99',
            description: 'From commit to the change being written to the org sockets.',
            unit: 's',
            queries: [0.5, 0.99].map((q) => ({
              expr: quantile(q, 'realtime_delivery_lag'),
              legend: `p${q * 100}`,
            })),
          }),
        ],
      },
    ],
  );
}

function runtime() {
  return dashboard(
    'dataflow-runtime',
    'Dataflow: runtime',
    'Is the Node process healthy? Event-loop delay, heap, RSS, garbage-collection time.',
    [
      {
        title: 'Node',
        panels: [
          timeseries({
            title: 'Event-loop delay p99',
            description: 'How late timers and I/O callbacks ran (p99 since the previous scrape).',
            unit: 's',
            queries: [{ expr: 'nodejs_eventloop_delay_p99', legend: '{{instance}}' }],
          }),
          timeseries({
            title: 'Heap used and RSS',
            description: 'V8 heap in use and resident memory, per process.',
            unit: 'bytes',
            queries: [
              { expr: 'process_memory_heap_used', legend: 'heap {{instance}}' },
              { expr: 'process_memory_rss', legend: 'rss {{instance}}' },
            ],
          }),
          timeseries({
            title: 'GC time per second',
            description: 'Seconds spent in garbage collection per second (share of one core).',
            unit: 'percentunit',
            queries: [{ expr: `sum(${rate('nodejs_gc_duration_sum')})`, legend: 'gc' }],
          }),
        ],
      },
    ],
  );
}

function benchHistory() {
  return dashboard(
    'dataflow-bench-history',
    'Dataflow: bench history',
    "How did each finding move across make bench runs? Every run's bench.om, backfilled into Prometheus with promtool (docs/dashboards.md), one point per run, labelled with run id, git commit, profile and database.",
    [
      {
        title: 'Findings across runs',
        panels: [
          timeseries({
            title: 'Judged value per finding',
            description:
              "Each audit finding's judged value per run (mixed units: read the finding's unit in the legend's report), with the preset and the database it was measured on.",
            unit: 'short',
            queries: [
              {
                expr: 'max by (finding, preset, measured_on) (dataflow_bench_finding)',
                legend: '{{finding}} ({{preset}}, {{measured_on}})',
              },
            ],
          }),
          timeseries({
            title: 'Estimates with their 95% intervals',
            description:
              'The findings judged on an estimate from paired rounds (the app-overhead ratios, push p99 against the bare ws server, ingest against its anchor): the value and its interval per run. A run decides such a finding only when the whole interval is on one side of the target.',
            unit: 'short',
            queries: [
              {
                expr: 'max by (finding) (dataflow_bench_finding and on (run_id, finding) dataflow_bench_finding_interval)',
                legend: '{{finding}}',
              },
              {
                expr: 'max by (finding) (dataflow_bench_finding_interval{bound="low"})',
                legend: '{{finding}}: 95% low',
              },
              {
                expr: 'max by (finding) (dataflow_bench_finding_interval{bound="high"})',
                legend: '{{finding}}: 95% high',
              },
            ],
          }),
          timeseries({
            title: 'How quiet the host was',
            description:
              "The share of a core the bare node:http hello's server used in the overhead suite (req/s x CPU per request): 0.87-0.95 on a quiet stretch of the 2-core reference machine. Below 0.75 the host or the load generator held it back, and the run's report warns: its paired ratios hold, its absolute figures read low.",
            unit: 'short',
            queries: [
              {
                expr: 'max by (profile) (dataflow_bench_figure{suite="overhead",metric="server cores used: bare node:http hello"})',
                legend: 'cores used, {{profile}}',
              },
            ],
          }),
          timeseries({
            title: 'Verdicts per run',
            description: 'How many findings passed, failed or were informational in each run.',
            unit: 'short',
            queries: [
              { expr: 'count by (verdict) (dataflow_bench_finding)', legend: '{{verdict}}' },
            ],
          }),
        ],
      },
    ],
  );
}

function capacity() {
  const latestFit = (param: string) =>
    `max by (preset) (last_over_time(dataflow_capacity{scenario="members",param="${param}"}[30d]))`;
  return dashboard(
    'dataflow-capacity',
    'Dataflow: capacity',
    'How far is the members page from its ceiling? The latest make capacity fit (Universal Scalability Law, backfilled from capacity.om) and the live throughput against X_max.',
    [
      {
        title: 'Latest fit, members page',
        panels: [
          ...(
            [
              [
                'x_max',
                'X_max',
                'reqps',
                'The fitted throughput ceiling, req/s per process, per preset.',
              ],
              [
                'n_star',
                'N*',
                'short',
                'Requests in flight at the ceiling: more concurrency than this lowers throughput.',
              ],
              [
                'sigma',
                'σ (contention)',
                'percentunit',
                'Share of the work that serializes (queueing on one resource).',
              ],
              [
                'lambda',
                'λ (one client)',
                'reqps',
                'Throughput of a single client: the service rate without contention.',
              ],
            ] as const
          ).map(([param, title, unit, description]) =>
            stat({
              title,
              description,
              unit,
              queries: [{ expr: latestFit(param), legend: '{{preset}}' }],
            }),
          ),
        ],
      },
      {
        title: 'Live',
        panels: [
          timeseries({
            title: 'Members page throughput against X_max',
            description:
              'Requests per second per process on the members page, and the fitted ceiling of the production preset.',
            unit: 'reqps',
            queries: [
              {
                expr: `sum by (instance) (${rate(`${HTTP}_count{http_route="${MEMBERS_ROUTE}"}`)})`,
                legend: 'members {{instance}}',
              },
              {
                expr: `max(last_over_time(dataflow_capacity{scenario="members",preset="recommended",param="x_max"}[30d]))`,
                legend: 'X_max (recommended)',
              },
            ],
          }),
        ],
      },
    ],
  );
}

/** Every dashboard, by file name. */
export function allDashboards() {
  return {
    findings: overview(),
    api: api(),
    levers: levers(),
    'sync-realtime': syncRealtime(),
    runtime: runtime(),
    'bench-history': benchHistory(),
    capacity: capacity(),
  };
}
