/**
 * Organization roles, normalized. Clerk's current role keys are `org:admin` and
 * `org:member`; v2 session tokens carry them without the prefix (`o.rol: "admin"`);
 * instances created before custom roles used `admin` and `basic_member`.
 */
export type OrgRole = 'admin' | 'member';

export function normalizeRole(raw: unknown): OrgRole | null {
  if (typeof raw !== 'string' || raw.length === 0) return null;
  const key = raw.startsWith('org:') ? raw.slice(4) : raw;
  if (key === 'admin') return 'admin';
  if (key === 'member' || key === 'basic_member') return 'member';
  // Custom roles have no admin rights here.
  return 'member';
}
