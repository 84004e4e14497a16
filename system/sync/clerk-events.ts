import { z } from 'zod';
import { normalizeRole } from '../auth/roles.ts';
import type { Membership, Organization, User } from '../db/schema.ts';

/**
 * Clerk webhook payloads -> the changes we apply. Only the fields we store are
 * validated; anything else Clerk adds is ignored, so a new Clerk field never turns a
 * good event into a dead letter. Shapes follow `@clerk/backend`'s `UserJSON`,
 * `OrganizationJSON`, `OrganizationMembershipJSON` and `DeletedObjectJSON`.
 */

const millis = z.number().int().nonnegative();
const metadata = z.record(z.string(), z.unknown()).nullish();

const userJson = z.object({
  id: z.string().min(1),
  primary_email_address_id: z.string().nullish(),
  email_addresses: z.array(z.object({ id: z.string(), email_address: z.string() })).nullish(),
  first_name: z.string().nullish(),
  last_name: z.string().nullish(),
  image_url: z.string().nullish(),
  public_metadata: metadata,
  created_at: millis,
  updated_at: millis,
});

const organizationJson = z.object({
  id: z.string().min(1),
  name: z.string(),
  slug: z.string().nullish(),
  image_url: z.string().nullish(),
  public_metadata: metadata,
  created_at: millis,
  updated_at: millis,
});

const membershipJson = z.object({
  id: z.string().min(1),
  role: z.string().min(1),
  organization: z.object({ id: z.string().min(1) }),
  public_user_data: z.object({ user_id: z.string().min(1) }),
  created_at: millis,
  updated_at: millis,
});

/** `user.deleted` / `organization.deleted`: `{ id, deleted: true, object }`; id may be missing. */
const deletedJson = z.object({ id: z.string().min(1) });

const envelope = z.object({
  type: z.string().min(1),
  // an object, checked here and read by the event's own schema below: a record schema
  // would validate and copy every field Clerk sends, which the event's schema ignores
  data: z.looseObject({}),
  /** Epoch ms when Clerk created the event. */
  timestamp: millis.optional(),
});

export type ClerkChange =
  | { entity: 'user'; op: 'upsert'; row: User }
  | { entity: 'organization'; op: 'upsert'; row: Organization }
  | { entity: 'membership'; op: 'upsert'; row: Membership }
  | { entity: 'user' | 'organization'; op: 'delete'; id: string; at: number }
  | { entity: 'membership'; op: 'delete'; row: Membership; at: number };

export type ParsedEvent =
  | { kind: 'change'; type: string; change: ClerkChange }
  | { kind: 'ignored'; type: string }
  | { kind: 'unusable'; type: string | null; reason: string };

export const HANDLED_EVENT_TYPES = [
  'user.created',
  'user.updated',
  'user.deleted',
  'organization.created',
  'organization.updated',
  'organization.deleted',
  'organizationMembership.created',
  'organizationMembership.updated',
  'organizationMembership.deleted',
] as const;
export type HandledEventType = (typeof HANDLED_EVENT_TYPES)[number];

const HANDLED = new Set<string>(HANDLED_EVENT_TYPES);

/** A bounded label for an event type: a handled type or `other`, so a sender cannot grow label sets. */
export function eventTypeLabel(type: string | null): HandledEventType | 'other' {
  return type !== null && HANDLED.has(type) ? (type as HandledEventType) : 'other';
}

/**
 * Parses a verified raw body. Never throws: an unusable payload is a value the caller
 * turns into a dead letter. `fallbackAt` (the svix timestamp) dates deletes whose
 * envelope has no `timestamp`. `parsed`: `raw` already parsed (the signature check parses
 * it), so it is not parsed twice.
 */
export function parseClerkEvent(
  raw: string,
  fallbackAt: number,
  parsed?: { value: unknown },
): ParsedEvent {
  let json: unknown;
  if (parsed) json = parsed.value;
  else {
    try {
      json = JSON.parse(raw);
    } catch {
      return { kind: 'unusable', type: null, reason: 'body is not valid JSON' };
    }
  }
  const outer = envelope.safeParse(json);
  if (!outer.success) {
    const type = (json as { type?: unknown } | null)?.type;
    return {
      kind: 'unusable',
      type: typeof type === 'string' ? type : null,
      reason: `envelope: ${describe(outer.error)}`,
    };
  }
  const { type, data } = outer.data;
  const at = outer.data.timestamp ?? fallbackAt;
  const parse = <T>(schema: z.ZodType<T>): T | string => {
    const result = schema.safeParse(data);
    return result.success ? result.data : `data: ${describe(result.error)}`;
  };
  const unusable = (reason: string): ParsedEvent => ({ kind: 'unusable', type, reason });

  switch (type) {
    case 'user.created':
    case 'user.updated': {
      const user = parse(userJson);
      return typeof user === 'string'
        ? unusable(user)
        : change(type, { entity: 'user', op: 'upsert', row: userRow(user) });
    }
    case 'organization.created':
    case 'organization.updated': {
      const org = parse(organizationJson);
      return typeof org === 'string'
        ? unusable(org)
        : change(type, { entity: 'organization', op: 'upsert', row: orgRow(org) });
    }
    case 'organizationMembership.created':
    case 'organizationMembership.updated':
    case 'organizationMembership.deleted': {
      const m = parse(membershipJson);
      if (typeof m === 'string') return unusable(m);
      const role = normalizeRole(m.role);
      if (role === null) return unusable(`data.role: unknown role ${JSON.stringify(m.role)}`);
      const row: Membership = {
        id: m.id,
        orgId: m.organization.id,
        userId: m.public_user_data.user_id,
        role,
        createdAt: m.created_at,
        updatedAt: m.updated_at,
        deletedAt: null,
      };
      return type === 'organizationMembership.deleted'
        ? change(type, { entity: 'membership', op: 'delete', row, at: Math.max(at, m.updated_at) })
        : change(type, { entity: 'membership', op: 'upsert', row });
    }
    case 'user.deleted':
    case 'organization.deleted': {
      const deleted = parse(deletedJson);
      if (typeof deleted === 'string') return unusable(deleted);
      const entity = type === 'user.deleted' ? 'user' : 'organization';
      return change(type, { entity, op: 'delete', id: deleted.id, at });
    }
    default:
      return { kind: 'ignored', type };
  }
}

const change = (type: string, c: ClerkChange): ParsedEvent => ({ kind: 'change', type, change: c });

function userRow(u: z.infer<typeof userJson>): User {
  const primary = u.email_addresses?.find((e) => e.id === u.primary_email_address_id);
  return {
    id: u.id,
    email: primary?.email_address ?? u.email_addresses?.[0]?.email_address ?? null,
    firstName: u.first_name ?? null,
    lastName: u.last_name ?? null,
    imageUrl: u.image_url ?? null,
    publicMetadata: JSON.stringify(u.public_metadata ?? {}),
    createdAt: u.created_at,
    updatedAt: u.updated_at,
    deletedAt: null,
  };
}

function orgRow(o: z.infer<typeof organizationJson>): Organization {
  return {
    id: o.id,
    name: o.name,
    slug: o.slug ?? null,
    imageUrl: o.image_url ?? null,
    publicMetadata: JSON.stringify(o.public_metadata ?? {}),
    createdAt: o.created_at,
    updatedAt: o.updated_at,
    deletedAt: null,
  };
}

function describe(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
    .join('; ');
}
