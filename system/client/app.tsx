import { QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import {
  createRootRouteWithContext,
  createRoute,
  createRouter,
  Link,
  Outlet,
  RouterProvider,
  redirect,
  useNavigate,
} from '@tanstack/react-router';
import {
  createContext,
  type FormEvent,
  useContext,
  useEffect,
  useState,
  useSyncExternalStore,
} from 'react';
import type { DevUser } from '../api/routes/dev.ts';
import { type ApiClient, createApi } from './api.ts';
import type { devTokenProvider, Session, TokenProvider } from './auth.ts';
import type { ClientConfig } from './config.ts';
import {
  keys,
  queryClientOptions,
  useMe,
  useMembers,
  useOrg,
  useProjectEdit,
  useProjects,
} from './queries.ts';
import { startRealtimeBridge } from './realtime.ts';

interface Services {
  api: ApiClient;
  auth: TokenProvider;
  config: ClientConfig;
}
const ServicesContext = createContext<Services | null>(null);
const useServices = () => useContext(ServicesContext)!;

/** The signed-in session, re-rendered when it changes (sign-in, org switch, sign-out). */
function useSession(auth: TokenProvider): Session | null {
  return useSyncExternalStore(
    auth.subscribe,
    () => sessionKey(auth),
    () => null,
  ) === null
    ? null
    : auth.session();
}
const sessionKey = (auth: TokenProvider) => {
  const s = auth.session();
  return s ? `${s.userId}|${s.orgId}` : null;
};

type DevAuth = ReturnType<typeof devTokenProvider>;

/** The active organization; views re-render when the switcher changes it. */
function useOrgId(): string {
  const { auth } = useServices();
  return useSession(auth)?.orgId ?? '';
}

const rootRoute = createRootRouteWithContext<{ auth: TokenProvider }>()({ component: Shell });

const signedIn = ({ context }: { context: { auth: TokenProvider } }) => {
  if (!context.auth.session()) throw redirect({ to: '/sign-in' });
};

const membersRoute = createRoute({
  getParentRoute: () => rootRoute,
  path: '/members',
  beforeLoad: signedIn,
  validateSearch: (search: Record<string, unknown>): { cursor?: string } =>
    typeof search.cursor === 'string' ? { cursor: search.cursor } : {},
  component: MembersPage,
});

const routes = [
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/',
    beforeLoad: signedIn,
    component: Dashboard,
  }),
  createRoute({ getParentRoute: () => rootRoute, path: '/sign-in', component: SignInPage }),
  membersRoute,
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/projects',
    beforeLoad: signedIn,
    component: ProjectsPage,
  }),
  createRoute({
    getParentRoute: () => rootRoute,
    path: '/me',
    beforeLoad: signedIn,
    component: MePage,
  }),
];

function buildRouter(auth: TokenProvider) {
  return createRouter({
    routeTree: rootRoute.addChildren(routes),
    basepath: '/app',
    context: { auth },
  });
}

declare module '@tanstack/react-router' {
  interface Register {
    router: ReturnType<typeof buildRouter>;
  }
}

/** The whole client over one token provider and one config. */
export function App(props: { auth: TokenProvider; config: ClientConfig }) {
  const [services] = useState<Services>(() => ({
    auth: props.auth,
    config: props.config,
    api: createApi({ token: () => props.auth.getToken(), config: props.config }),
  }));
  const [queryClient] = useState(() => new QueryClient(queryClientOptions(props.config)));
  const [router] = useState(() => buildRouter(props.auth));
  return (
    <ServicesContext.Provider value={services}>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </ServicesContext.Provider>
  );
}

function Shell() {
  const { auth, api, config } = useServices();
  const session = useSession(auth);
  const cache = useQueryClient();
  const navigate = useNavigate();
  const [status, setStatus] = useState<'connecting' | 'open' | 'closed'>('closed');
  const orgId = session?.orgId;
  useEffect(() => {
    if (!orgId) return;
    const bridge = startRealtimeBridge({
      queryClient: cache,
      api,
      orgId,
      token: () => auth.getToken(),
      config,
      onStatus: setStatus,
    });
    return () => bridge.close();
  }, [orgId, cache, api, auth, config]);
  return (
    <div className="shell">
      <header>
        <strong>dataflow</strong>
        {session && (
          <>
            <nav>
              <Link to="/">Dashboard</Link> <Link to="/members">Members</Link>{' '}
              <Link to="/projects">Projects</Link> <Link to="/me">Me</Link>
            </nav>
            <OrgSwitcher orgId={session.orgId} />
            <span data-testid="realtime-status" className={`status ${status}`}>
              {status}
            </span>
            <button
              type="button"
              onClick={() => {
                auth.signOut();
                cache.clear();
                void navigate({ to: '/sign-in' });
              }}
            >
              Sign out
            </button>
          </>
        )}
        <span className="config" data-testid="client-config">
          client: {config.name}
          {config.batch.enabled ? ', batching' : ''}, {config.realtime}
        </span>
      </header>
      <main>
        <Outlet />
      </main>
    </div>
  );
}

function OrgSwitcher(props: { orgId: string }) {
  const { api, auth } = useServices();
  const me = useMe(api);
  const cache = useQueryClient();
  const orgs = me.data?.organizations ?? [];
  if (orgs.length < 2) return null;
  return (
    <label>
      Organization{' '}
      <select
        data-testid="org-switcher"
        value={props.orgId}
        onChange={async (event) => {
          await auth.switchOrg(event.target.value);
          cache.removeQueries({ queryKey: keys.me() });
        }}
      >
        {orgs.map((org) => (
          <option key={org.id} value={org.id}>
            {org.name}
          </option>
        ))}
      </select>
    </label>
  );
}

function Dashboard() {
  const { api } = useServices();
  const orgId = useOrgId();
  return (
    <div className="dashboard">
      <OrgCard orgId={orgId} />
      <MembersTable orgId={orgId} cursor={null} />
      <ProjectsList orgId={orgId} api={api} />
    </div>
  );
}

function OrgCard(props: { orgId: string }) {
  const { api } = useServices();
  const org = useOrg(api, props.orgId);
  if (org.isPending) return <p>Loading the organization…</p>;
  if (org.isError) return <p role="alert">{org.error.message}</p>;
  return (
    <section data-testid="org">
      <h1 data-testid="org-name">{org.data.name}</h1>
      <p>
        <span data-testid="member-count">{org.data.memberCount}</span> members · you are{' '}
        {org.data.role}
      </p>
    </section>
  );
}

function MembersTable(props: { orgId: string; cursor: string | null }) {
  const { api } = useServices();
  const members = useMembers(api, props.orgId, props.cursor);
  if (members.isPending) return <p>Loading members…</p>;
  if (members.isError) return <p role="alert">{members.error.message}</p>;
  return (
    <section>
      <h2>Members</h2>
      <table data-testid="members">
        <tbody>
          {members.data.data.map((m) => (
            <tr key={m.membershipId} data-user-id={m.user?.id ?? ''}>
              <td className="name">
                {m.user ? `${m.user.firstName ?? ''} ${m.user.lastName ?? ''}`.trim() : '(unknown)'}
              </td>
              <td>{m.user?.email}</td>
              <td>{m.role}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {members.data.nextCursor && (
        <Link to="/members" search={{ cursor: members.data.nextCursor }} data-testid="next-page">
          Next page
        </Link>
      )}
    </section>
  );
}

function MembersPage() {
  const orgId = useOrgId();
  const search = membersRoute.useSearch();
  return (
    <>
      {search.cursor && (
        <Link to="/members" search={{}} data-testid="first-page">
          First page
        </Link>
      )}
      <MembersTable orgId={orgId} cursor={search.cursor ?? null} />
    </>
  );
}

function ProjectsPage() {
  const { api } = useServices();
  return <ProjectsList orgId={useOrgId()} api={api} />;
}

function ProjectsList(props: { orgId: string; api: ApiClient }) {
  const { config } = useServices();
  const projects = useProjects(props.api, props.orgId);
  const edit = useProjectEdit(props.api, props.orgId, config);
  const [name, setName] = useState('');
  const create = (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim()) return;
    edit.mutate({ kind: 'create', name: name.trim(), tempId: `tmp_${Date.now()}` });
    setName('');
  };
  return (
    <section>
      <h2>Projects</h2>
      <form onSubmit={create}>
        <input
          aria-label="New project name"
          data-testid="new-project"
          value={name}
          onChange={(event) => setName(event.target.value)}
        />
        <button type="submit">Create</button>
      </form>
      {edit.isError && (
        <p role="alert" data-testid="edit-error">
          {edit.error.message}
        </p>
      )}
      {projects.isPending && <p>Loading projects…</p>}
      <ul data-testid="projects">
        {projects.data?.data.map((project) => (
          <ProjectRow
            key={project.id}
            id={project.id}
            name={project.name}
            pending={project.id.startsWith('tmp_')}
            onRename={(next) => edit.mutate({ kind: 'rename', id: project.id, name: next })}
            onDelete={() => edit.mutate({ kind: 'delete', id: project.id })}
          />
        ))}
      </ul>
    </section>
  );
}

function ProjectRow(props: {
  id: string;
  name: string;
  pending: boolean;
  onRename: (name: string) => void;
  onDelete: () => void;
}) {
  const [editing, setEditing] = useState<string | null>(null);
  return (
    <li data-project-id={props.id} data-pending={props.pending ? 'true' : 'false'}>
      {editing === null ? (
        <>
          <span className="project-name">{props.name}</span>{' '}
          <button type="button" disabled={props.pending} onClick={() => setEditing(props.name)}>
            Rename
          </button>{' '}
          <button type="button" disabled={props.pending} onClick={props.onDelete}>
            Delete
          </button>
        </>
      ) : (
        <form
          onSubmit={(event) => {
            event.preventDefault();
            if (editing.trim()) props.onRename(editing.trim());
            setEditing(null);
          }}
        >
          <input
            aria-label="Project name"
            value={editing}
            onChange={(event) => setEditing(event.target.value)}
          />
          <button type="submit">Save</button>
        </form>
      )}
    </li>
  );
}

function MePage() {
  const { api } = useServices();
  const me = useMe(api);
  if (me.isPending) return <p>Loading…</p>;
  if (me.isError) return <p role="alert">{me.error.message}</p>;
  return (
    <section data-testid="me">
      <h1>
        {me.data.user
          ? `${me.data.user.firstName ?? ''} ${me.data.user.lastName ?? ''}`
          : me.data.userId}
      </h1>
      <p>{me.data.user?.email}</p>
      <ul>
        {me.data.organizations.map((org) => (
          <li key={org.id}>
            {org.name} ({org.role})
          </li>
        ))}
      </ul>
    </section>
  );
}

function SignInPage() {
  const { auth } = useServices();
  const navigate = useNavigate();
  const [users, setUsers] = useState<DevUser[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (auth.kind !== 'dev') return;
    fetch('/dev/users')
      .then(async (res) => {
        if (!res.ok)
          throw new Error(`the development sign-in is not available (HTTP ${res.status})`);
        setUsers(((await res.json()) as { users: DevUser[] }).users);
      })
      .catch((e: Error) => setError(e.message));
  }, [auth]);
  if (error) return <p role="alert">{error}</p>;
  if (!users) return <p>Loading…</p>;
  return (
    <section data-testid="sign-in">
      <h1>Development sign-in</h1>
      <p>Sign in as a seeded user, into one of their organizations.</p>
      <ul>
        {users.map((user) => (
          <li key={user.id} data-user-id={user.id}>
            {user.name}:{' '}
            {user.organizations.map((org) => (
              <button
                key={org.id}
                type="button"
                data-org-id={org.id}
                onClick={async () => {
                  await (auth as DevAuth).signIn(user.id, org.id);
                  await navigate({ to: '/' });
                }}
              >
                {org.name} ({org.role})
              </button>
            ))}
          </li>
        ))}
      </ul>
    </section>
  );
}
