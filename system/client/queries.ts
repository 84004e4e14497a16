import { type QueryClient, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import type { MemberView, MeView, OrgDetail, Page, ProjectView } from '../api/dto.ts';
import type { ApiClient } from './api.ts';
import type { ClientConfig } from './config.ts';

/** Query keys: everything of an org starts with `scope(orgId)` (a reset invalidates it). */
export const keys = {
  me: () => ['me'] as const,
  scope: (orgId: string) => ['org', orgId] as const,
  org: (orgId: string) => ['org', orgId, 'detail'] as const,
  members: (orgId: string, cursor?: string | null) =>
    cursor === undefined
      ? (['org', orgId, 'members'] as const)
      : (['org', orgId, 'members', cursor ?? 'first'] as const),
  projects: (orgId: string) => ['org', orgId, 'projects'] as const,
};

export const MEMBERS_PAGE = 50;

export function useMe(api: ApiClient) {
  return useQuery({ queryKey: keys.me(), queryFn: () => api.get<MeView>('/api/me') });
}

export function useOrg(api: ApiClient, orgId: string) {
  return useQuery({
    queryKey: keys.org(orgId),
    queryFn: () => api.get<OrgDetail>(`/api/orgs/${orgId}`),
  });
}

export function useMembers(api: ApiClient, orgId: string, cursor: string | null) {
  const query = new URLSearchParams({ limit: String(MEMBERS_PAGE) });
  if (cursor) query.set('cursor', cursor);
  return useQuery({
    queryKey: keys.members(orgId, cursor),
    queryFn: () => api.get<Page<MemberView>>(`/api/orgs/${orgId}/members?${query}`),
  });
}

export function useProjects(api: ApiClient, orgId: string) {
  return useQuery({
    queryKey: keys.projects(orgId),
    queryFn: () => api.get<Page<ProjectView>>(`/api/orgs/${orgId}/projects?limit=100`),
  });
}

type ProjectEdit =
  | { kind: 'create'; name: string; tempId: string }
  | { kind: 'rename'; id: string; name: string }
  | { kind: 'delete'; id: string };

/**
 * Project edits. Optimistic (the config's `optimistic`): the list changes at once, the
 * server's answer replaces the guess, an error puts the snapshot back. Otherwise the list
 * changes when the server has answered (and, in `invalidate` mode, is refetched).
 */
export function useProjectEdit(api: ApiClient, orgId: string, config: ClientConfig) {
  const cache = useQueryClient();
  const key = keys.projects(orgId);
  return useMutation({
    mutationFn: async (edit: ProjectEdit) => {
      const base = `/api/orgs/${orgId}/projects`;
      if (edit.kind === 'create') return api.send<ProjectView>('POST', base, { name: edit.name });
      if (edit.kind === 'rename') {
        return api.send<ProjectView>('PATCH', `${base}/${edit.id}`, { name: edit.name });
      }
      await api.send<void>('DELETE', `${base}/${edit.id}`);
      return null;
    },
    onMutate: async (edit) => {
      if (!config.optimistic) return { snapshot: undefined };
      await cache.cancelQueries({ queryKey: key });
      const snapshot = cache.getQueryData<Page<ProjectView>>(key);
      cache.setQueryData<Page<ProjectView>>(key, (page) => page && applyEdit(page, edit));
      return { snapshot };
    },
    onError: (_error, _edit, context) => {
      if (context?.snapshot) cache.setQueryData(key, context.snapshot);
    },
    onSuccess: (project, edit) => {
      cache.setQueryData<Page<ProjectView>>(key, (page) => {
        if (!page) return page;
        if (edit.kind === 'delete' || project === null) return applyEdit(page, edit);
        // the server's row replaces the guess (or the row it renamed), in place
        const guess = edit.kind === 'create' ? edit.tempId : edit.id;
        const at = page.data.findIndex((p) => p.id === guess || p.id === project.id);
        const data = page.data.filter((p) => p.id !== guess && p.id !== project.id);
        data.splice(at === -1 ? data.length : at, 0, project);
        return { ...page, data };
      });
      if (config.realtime === 'invalidate') void cache.invalidateQueries({ queryKey: key });
    },
  });
}

function applyEdit(page: Page<ProjectView>, edit: ProjectEdit): Page<ProjectView> {
  switch (edit.kind) {
    case 'create': {
      const now = Date.now();
      const guess: ProjectView = {
        id: edit.tempId,
        orgId: '',
        name: edit.name,
        status: 'active',
        createdBy: '',
        version: 0,
        createdAt: now,
        updatedAt: now,
      };
      return { ...page, data: [...page.data, guess] };
    }
    case 'rename':
      return {
        ...page,
        data: page.data.map((p) => (p.id === edit.id ? { ...p, name: edit.name } : p)),
      };
    case 'delete':
      return { ...page, data: page.data.filter((p) => p.id !== edit.id) };
  }
}

/** TanStack Query's client with the config's freshness and retry pacing. */
export function queryClientOptions(
  config: ClientConfig,
): ConstructorParameters<typeof QueryClient>[0] {
  return {
    defaultOptions: {
      queries: {
        staleTime: config.staleTimeMs,
        retry: 2,
        retryDelay: (attempt) =>
          config.batch.retryStrategy === 'exponential' ? Math.min(250 * 2 ** attempt, 4000) : 0,
        refetchOnWindowFocus: false,
      },
    },
  };
}
