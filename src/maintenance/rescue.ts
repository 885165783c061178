import type { Db } from '../store/db.js';
import { notifyDue } from '../queue/wake.js';
import { withMaintenanceLock } from './lock.js';

export interface Rescue {
  workers: string[];
  released: number;
}

/**
 * Signs off the workers not seen for `deadAfterMs` (database time) and releases every
 * lease they hold, then wakes the live workers to claim those events at once. Leases
 * held by anything that never registered (a resend in the API) are left to expire.
 */
export async function rescueLeases(db: Db, deadAfterMs: number): Promise<Rescue | undefined> {
  return withMaintenanceLock(db, async (tx) => {
    const { rows } = await tx.query<Rescue>(
      `with dead as (
         delete from workers where last_seen < now() - $1 * interval '1 millisecond'
         returning id
       ), released as (
         update hook_event_queue q set locked_by = null, locked_until = null
         from dead where q.locked_by = dead.id
         returning q.hook_event_id
       )
       select coalesce((select array_agg(id order by id) from dead), '{}') as workers,
              (select count(*)::int from released) as released`,
      [deadAfterMs],
    );
    const rescue = rows[0] ?? { workers: [], released: 0 };
    if (rescue.released > 0) await notifyDue(tx);
    return rescue;
  });
}
