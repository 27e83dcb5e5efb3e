/** driver_state: what Nomad stores with a handle, encoded and decoded (every refusal is INVALID_ARGUMENT). */
import assert from 'node:assert/strict';
import { DriverError } from '../../src/shared/errors';
import { decodeDriverState, encodeDriverState, HANDLE_VERSION, type DriverStateV1 } from '../../src/main/tasks/driver-state';

const BASE: Omit<DriverStateV1, 'format' | 'v'> = {
  pid: 42, pidStartTime: '123', statusDir: '/run/x/tasks/t', cgroup: { mode: 'v2', dir: '/sys/fs/cgroup/t' }, user: { name: 'u', uid: 1, gid: 1 },
  taskDir: '/alloc/t', startedAt: '2026-01-01T00:00:00.000Z', oomKillsBefore: 0,
};
const raw = (v: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ format: 'nomad-driver-exec2-ts', v: 1, ...BASE, ...v }));
const refused = (bytes: Uint8Array, message: RegExp, version = HANDLE_VERSION): void => {
  assert.throws(() => decodeDriverState(bytes, version), (e: DriverError) => e.code === 'INVALID_ARGUMENT' && message.test(e.message));
};

describe('driver_state encode/decode', () => {
  it('round-trips every field, and is readable JSON', () => {
    const full = { ...BASE, sandbox: { unveil: ['r:/srv'], workDir: 'local', oomScoreAdj: 500, capAdd: ['net_raw'], capDrop: ['all'] }, caps: { bounding: [13], ambient: [13] }, scopeAbstractUnixSockets: false };
    const bytes = encodeDriverState(full);
    assert.deepEqual(decodeDriverState(bytes, HANDLE_VERSION), { format: 'nomad-driver-exec2-ts', v: 1, ...full });
    assert.equal((JSON.parse(Buffer.from(bytes).toString('utf8')) as { pid: unknown }).pid, 42);
  });

  it('refuses another handle version, bytes that are not JSON, another format and another state version', () => {
    refused(encodeDriverState(BASE), /handle version 2 is not supported by this plugin \(expected 1\)/, 2);
    refused(Buffer.from([0x83, 0xa3]), /not from this driver \(not JSON\)/);
    refused(raw({ format: 'nomad-driver-exec2' }), /not from this driver \(unknown format\)/);
    refused(raw({ v: 2 }), /driver_state version 2 is not supported/);
  });

  it('refuses a state missing what recovery needs', () => {
    refused(raw({ pid: 1.5 }), /incomplete/);
    refused(raw({ pid: undefined }), /incomplete/);
    refused(raw({ pidStartTime: 123 }), /incomplete/);
    refused(raw({ statusDir: null }), /incomplete/);
    refused(raw({ cgroup: null }), /incomplete/);
    refused(raw({ user: null }), /incomplete/);
  });

  it('fills in cap_add/cap_drop for a sandbox from before they existed, and refuses a malformed one', () => {
    const old = decodeDriverState(raw({ sandbox: { unveil: [], workDir: null, oomScoreAdj: null } }), HANDLE_VERSION);
    assert.deepEqual(old.sandbox, { unveil: [], workDir: null, oomScoreAdj: null, capAdd: [], capDrop: [] });
    refused(raw({ sandbox: { unveil: 'r:/x', workDir: null, oomScoreAdj: null } }), /malformed sandbox/);
    refused(raw({ sandbox: { unveil: [], workDir: 3, oomScoreAdj: null } }), /malformed sandbox/);
    refused(raw({ sandbox: { unveil: [], workDir: null, oomScoreAdj: 0.5 } }), /malformed sandbox/);
    refused(raw({ sandbox: { unveil: [], workDir: null, oomScoreAdj: null, capAdd: [1] } }), /malformed sandbox/);
  });

  it('refuses capabilities outside 0-63 or not integers, and a non-boolean socket scope', () => {
    refused(raw({ caps: { bounding: [64], ambient: [] } }), /malformed capabilities/);
    refused(raw({ caps: { bounding: [1], ambient: [-1] } }), /malformed capabilities/);
    refused(raw({ caps: { bounding: ['1'], ambient: [] } }), /malformed capabilities/);
    refused(raw({ caps: { bounding: [1] } }), /malformed capabilities/);
    refused(raw({ scopeAbstractUnixSockets: 'yes' }), /malformed scopeAbstractUnixSockets/);
  });

  it('decodes handles from before sandbox, caps and scope were kept, leaving them absent', () => {
    const s = decodeDriverState(encodeDriverState(BASE), HANDLE_VERSION);
    assert.equal(s.sandbox, undefined);
    assert.equal(s.caps, undefined);
    assert.equal(s.scopeAbstractUnixSockets, undefined);
  });
});
