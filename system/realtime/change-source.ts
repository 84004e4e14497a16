import type { Db } from '../db/database.ts';
import {
  changeById,
  changeLogBounds,
  latestOrgChange,
  orgChangesAfter,
} from '../db/queries/changes.ts';
import type { ChangeSource } from './hub.ts';

/** The hub's view of the change log, backed by the database. */
export function changeSource(db: Db): ChangeSource {
  return {
    orgChangesAfter: (orgId, afterId, limit) => orgChangesAfter(db, orgId, afterId, limit),
    changeById: (id) => changeById(db, id),
    bounds: () => changeLogBounds(db),
    latestForOrg: (orgId) => latestOrgChange(db, orgId),
  };
}
