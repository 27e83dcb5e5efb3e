/**
 * Who a task runs as. Nomad 1.8+ hands dynamic workload users as
 * `nomad-<id>` with no passwd entry (protocol reference §6.5); anything else
 * is an account looked up in the system's user database (in a worker, since
 * NSS lookups may block).
 *
 * A dynamic user is a uid = gid that belongs to nobody: it is accepted only
 * inside the client's dynamic-user range (never 0), and the launch worker
 * refuses it when the passwd or group database knows the id (an existing
 * account's files would be the task's).
 */
import { invalidArgument } from '../shared/errors';

export interface Credentials {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
  home: string;
}

export interface DynamicUserRange {
  min: number;
  max: number;
}

const DYNAMIC = /^nomad-(\d+)$/;

/**
 * Dynamic users resolve without any lookup; null means "not a dynamic user,
 * look it up". Every `nomad-<digits>` is a dynamic user name: one outside
 * the range is refused rather than looked up, so `nomad-0` can never be
 * root whatever the passwd database says.
 */
export function dynamicUser(user: string, range: DynamicUserRange): Credentials | null {
  const m = DYNAMIC.exec(user);
  if (!m) return null;
  const digits = m[1]!;
  const id = Number(digits);
  if (digits.length > 10 || !Number.isSafeInteger(id) || id < range.min || id > range.max || id === 0) {
    throw invalidArgument(`user "${user}": dynamic workload users must have an id in ${range.min}-${range.max} (the plugin options dynamic_user_min and dynamic_user_max)`);
  }
  return { name: user, uid: id, gid: id, groups: [], home: '/nonexistent' };
}

/** `nomad-<digits>`: a dynamic workload user name (in range or not). */
export function isDynamicUserName(user: string): boolean {
  return DYNAMIC.test(user);
}

export function checkUserString(user: string): void {
  if (user === '') throw invalidArgument('user must be set (enable dynamic workload users or set the task\'s user)');
  if (user.includes('\0') || user.includes('/') || user.includes(':')) throw invalidArgument(`user "${user}" is not a valid user name`);
}
