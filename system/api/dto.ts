import type { Membership, Organization, Project, User } from '../db/schema.ts';

// The public shapes of the API: explicit, so a new column never leaks by accident.

export const userDto = (user: User) => ({
  id: user.id,
  email: user.email,
  firstName: user.firstName,
  lastName: user.lastName,
  imageUrl: user.imageUrl,
  createdAt: user.createdAt,
  updatedAt: user.updatedAt,
});

export const orgDto = (org: Organization) => ({
  id: org.id,
  name: org.name,
  slug: org.slug,
  imageUrl: org.imageUrl,
  createdAt: org.createdAt,
  updatedAt: org.updatedAt,
});

export const memberDto = (membership: Membership, user: User | null) => ({
  membershipId: membership.id,
  role: membership.role,
  joinedAt: membership.createdAt,
  // null while the user's own webhook has not arrived yet
  user: user === null ? null : userDto(user),
});

export const projectDto = (project: Project) => ({
  id: project.id,
  orgId: project.orgId,
  name: project.name,
  status: project.status,
  createdBy: project.createdBy,
  version: project.version,
  createdAt: project.createdAt,
  updatedAt: project.updatedAt,
});

/**
 * The response bodies, as the client (`system/client/`) reads them. Each route builds its
 * body with `satisfies` one of these, so a changed shape fails the type check on both
 * sides. Timestamps are epoch milliseconds.
 */
export type UserView = ReturnType<typeof userDto>;
export type OrgView = ReturnType<typeof orgDto>;
export type MemberView = ReturnType<typeof memberDto>;
export type ProjectView = ReturnType<typeof projectDto>;
/** `GET /api/orgs/:orgId`: the org, its member count and the caller's role in it. */
export type OrgDetail = OrgView & { memberCount: number; role: string };
/** A cursor page: `nextCursor` is null on the last page. */
export interface Page<T> {
  data: T[];
  nextCursor: string | null;
}
/** `GET /api/me`. */
export interface MeView {
  userId: string;
  activeOrgId: string | null;
  user: UserView | null;
  organizations: Array<OrgView & { role: string }>;
}
