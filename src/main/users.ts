/**
 * Who a task runs as. Nomad 1.8+ hands dynamic workload users as
 * `nomad-<id>` with no passwd entry (protocol reference §6.5); anything else
 * is an account looked up in the system's user database (in a worker, since
 * NSS lookups may block).
 */
import { invalidArgument } from './errors';

export interface Credentials {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

const DYNAMIC = /^nomad-(\d+)$/;
const MAX_ID = 2 ** 31 - 1;

/** Dynamic users resolve without any lookup; null means "look it up". */
export function dynamicUser(user: string): Credentials | null {
  const m = DYNAMIC.exec(user);
  if (!m) return null;
  const id = Number(m[1]);
  if (!Number.isSafeInteger(id) || id > MAX_ID) return null;
  return { name: user, uid: id, gid: id, groups: [], home: '/nonexistent' };
}

export function checkUserString(user: string): void {
  if (user === '') throw invalidArgument('user must be set (enable dynamic workload users or set the task\'s user)');
  if (user.includes('\0') || user.includes('/') || user.includes(':')) throw invalidArgument(`user "${user}" is not a valid user name`);
}
