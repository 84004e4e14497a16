/**
 * The load scenarios, defined once. The bench's load suites (`load/generator.ts`),
 * the regression gate and the generated k6 scripts (`make k6` -> `load/k6/`) all read
 * these: the same requests, the same mixes, the same arrival models.
 *
 * Paths are templates: `{orgId}` is the caller's org, `{projectId}` a project the
 * scenario's `setup` request created. The token is an admin of that org.
 */
export type Method = 'GET' | 'POST' | 'PATCH';

export interface RequestTemplate {
  /** Tag for per-request figures (k6 `name` tag). */
  name: string;
  method: Method;
  path: string;
  body?: Record<string, unknown>;
  /** Relative frequency within the scenario's mix. */
  weight: number;
  /** The status a correct answer has; anything else counts as an error. */
  expect: number;
}

/** Closed model: a fixed number of connections, each sends as soon as its answer arrives. */
export interface ClosedModel {
  kind: 'closed';
  connections: number;
}
/**
 * Open model: requests arrive at a fixed rate whatever the server does (how users
 * arrive). Latency is measured from the scheduled send time, so a stalled server
 * cannot hide its queue (coordinated-omission correction). `maxInFlight` bounds the
 * generator; arrivals beyond it wait in line and their wait counts as latency.
 */
export interface OpenModel {
  kind: 'open';
  rate: number;
  maxInFlight: number;
}
/** A cold burst: `requests` identical requests sent at once, each exactly once. */
export interface BurstModel {
  kind: 'burst';
  requests: number;
}
export type ArrivalModel = ClosedModel | OpenModel | BurstModel;

export interface Scenario {
  name: ScenarioName;
  description: string;
  /** The server route whose `/metrics` series describe the main request. */
  route: string;
  /** Run once before the load; `{projectId}` is taken from its JSON `id`. */
  setup?: Omit<RequestTemplate, 'weight'>;
  requests: readonly RequestTemplate[];
  models: readonly ArrivalModel[];
}

export const SCENARIO_NAMES = ['members', 'projects-mixed', 'cold-burst', 'health'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

const membersPage: RequestTemplate = {
  name: 'members page',
  method: 'GET',
  path: '/api/orgs/{orgId}/members?limit=50',
  weight: 1,
  expect: 200,
};

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  members: {
    name: 'members',
    description: 'Members page, limit 50 (read-heavy; the audit N+1 example)',
    route: '/api/orgs/:orgId/members',
    requests: [membersPage],
    models: [
      { kind: 'closed', connections: 16 },
      { kind: 'open', rate: 100, maxInFlight: 64 },
    ],
  },
  'projects-mixed': {
    name: 'projects-mixed',
    description: 'Projects: 80% list, 10% create, 10% rename (writes invalidate caches)',
    route: '/api/orgs/:orgId/projects',
    setup: {
      name: 'create project (setup)',
      method: 'POST',
      path: '/api/orgs/{orgId}/projects',
      body: { name: 'load scenario project' },
      expect: 201,
    },
    requests: [
      {
        name: 'list projects',
        method: 'GET',
        path: '/api/orgs/{orgId}/projects?limit=20',
        weight: 8,
        expect: 200,
      },
      {
        name: 'create project',
        method: 'POST',
        path: '/api/orgs/{orgId}/projects',
        body: { name: 'load project' },
        weight: 1,
        expect: 201,
      },
      {
        name: 'rename project',
        method: 'PATCH',
        path: '/api/orgs/{orgId}/projects/{projectId}',
        body: { name: 'renamed by load' },
        weight: 1,
        expect: 200,
      },
    ],
    models: [
      { kind: 'closed', connections: 16 },
      { kind: 'open', rate: 100, maxInFlight: 64 },
    ],
  },
  health: {
    name: 'health',
    description: 'GET /health: the middleware stack alone (no auth, no database)',
    route: '/health',
    requests: [{ name: 'health', method: 'GET', path: '/health', weight: 1, expect: 200 }],
    models: [
      { kind: 'closed', connections: 16 },
      { kind: 'open', rate: 1000, maxInFlight: 64 },
    ],
  },
  'cold-burst': {
    name: 'cold-burst',
    description: '200 identical members requests at once on a cold cache (coalescing)',
    route: '/api/orgs/:orgId/members',
    requests: [membersPage],
    models: [{ kind: 'burst', requests: 200 }],
  },
};

export interface ScenarioVars {
  orgId: string;
  projectId?: string;
}

/** Fills a path template; an unknown or missing variable is an error, not a literal `{x}`. */
export function fillPath(template: string, vars: ScenarioVars): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => {
    const value = (vars as unknown as Record<string, string | undefined>)[key];
    if (value === undefined) throw new Error(`scenario path ${template}: no value for {${key}}`);
    return encodeURIComponent(value);
  });
}
