import type { QueryClient } from '@tanstack/react-query';
import type { MemberView, OrgDetail, Page, ProjectView, UserView } from '../api/dto.ts';
import {
  connectRealtime,
  type RealtimeClient,
  type WebSocketConstructor,
} from '../realtime/client.ts';
import type { ChangeMessage } from '../realtime/protocol.ts';
import { type ApiClient, newTraceparent } from './api.ts';
import type { ClientConfig } from './config.ts';
import { keys } from './queries.ts';

/** What the bridge did with each change (the harness counts refetches by it). */
export type BridgeAction = 'patched' | 'invalidated' | 'ignored';

/**
 * The realtime bridge: one socket per tab (the reconnecting client of
 * realtime/client.ts, resuming from its last event id), each change applied to the query
 * cache. In `patch` mode a change touches only the cached rows it names (`setQueryData`);
 * what a change cannot say by itself (a new row, a user's new name) is fetched for that
 * row, or its list invalidated. A `reset` (the server could not replay) invalidates all
 * of the org's queries. In `invalidate` mode every change refetches its entity's queries:
 * the storm the audit describes, kept to compare against.
 */
export function startRealtimeBridge(options: {
  queryClient: QueryClient;
  api: ApiClient;
  orgId: string;
  token: () => Promise<string | null>;
  config: ClientConfig;
  onStatus?: (status: 'connecting' | 'open' | 'closed') => void;
  onChange?: (change: ChangeMessage, action: BridgeAction) => void;
}): RealtimeClient {
  const { queryClient: cache, orgId, api } = options;
  const wsUrl = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

  const invalidate = (entity: ChangeMessage['entity']): BridgeAction => {
    const targets =
      entity === 'project'
        ? [keys.projects(orgId)]
        : entity === 'organization'
          ? [keys.org(orgId)]
          : [keys.members(orgId), keys.org(orgId)];
    for (const queryKey of targets) void cache.invalidateQueries({ queryKey });
    return 'invalidated';
  };

  const patchMembers = (update: (page: Page<MemberView>) => Page<MemberView>) =>
    cache.setQueriesData<Page<MemberView>>({ queryKey: keys.members(orgId) }, (page) =>
      page ? update(page) : page,
    );

  const patch = (change: ChangeMessage): BridgeAction => {
    const data = change.data as Record<string, unknown>;
    switch (change.entity) {
      case 'project': {
        const lists = cache.getQueriesData<Page<ProjectView>>({ queryKey: keys.projects(orgId) });
        const held = lists.some(([, page]) => page?.data.some((p) => p.id === change.entityId));
        if (change.op === 'delete') {
          cache.setQueriesData<Page<ProjectView>>({ queryKey: keys.projects(orgId) }, (page) =>
            page ? { ...page, data: page.data.filter((p) => p.id !== change.entityId) } : page,
          );
          return 'patched';
        }
        if (!held) return invalidate('project'); // a new row: the list's order is the server's
        cache.setQueriesData<Page<ProjectView>>({ queryKey: keys.projects(orgId) }, (page) =>
          page
            ? {
                ...page,
                data: page.data.map((p) =>
                  p.id === change.entityId && p.version <= change.version
                    ? { ...p, ...(data as Partial<ProjectView>), version: change.version }
                    : p,
                ),
              }
            : page,
        );
        return 'patched';
      }
      case 'user': {
        const held = cache
          .getQueriesData<Page<MemberView>>({ queryKey: keys.members(orgId) })
          .some(([, page]) => page?.data.some((m) => m.user?.id === change.entityId));
        if (!held) return 'ignored';
        if (change.op === 'delete') return invalidate('user');
        // the change names the user, not the new fields: read that one user
        void api.get<UserView>(`/api/users/${change.entityId}`).then(
          (user) =>
            patchMembers((page) => ({
              ...page,
              data: page.data.map((m) => (m.user?.id === user.id ? { ...m, user } : m)),
            })),
          () => invalidate('user'),
        );
        return 'patched';
      }
      case 'membership': {
        const userId = typeof data.userId === 'string' ? data.userId : null;
        if (change.op === 'delete' && userId) {
          patchMembers((page) => ({
            ...page,
            data: page.data.filter((m) => m.user?.id !== userId),
          }));
          cache.setQueryData<OrgDetail>(keys.org(orgId), (org) =>
            org ? { ...org, memberCount: org.memberCount - 1 } : org,
          );
          return 'patched';
        }
        if (change.op === 'upsert' && userId && typeof data.role === 'string') {
          let held = false;
          patchMembers((page) => ({
            ...page,
            data: page.data.map((m) => {
              if (m.user?.id !== userId) return m;
              held = true;
              return { ...m, role: data.role as string };
            }),
          }));
          if (held) return 'patched';
        }
        return invalidate('membership');
      }
      case 'organization': {
        if (typeof data.name !== 'string') return invalidate('organization');
        cache.setQueryData<OrgDetail>(keys.org(orgId), (org) =>
          org ? { ...org, name: data.name as string } : org,
        );
        return 'patched';
      }
    }
  };

  return connectRealtime({
    url: wsUrl,
    token: async () => (await options.token()) ?? '',
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    traceparent: newTraceparent,
    onChange: (change) => {
      const action =
        options.config.realtime === 'patch' ? patch(change) : invalidate(change.entity);
      options.onChange?.(change, action);
    },
    onReset: () => void cache.invalidateQueries({ queryKey: keys.scope(orgId) }),
    onStatus: (status) => options.onStatus?.(status),
  });
}
