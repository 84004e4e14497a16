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
