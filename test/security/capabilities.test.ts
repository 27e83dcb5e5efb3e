/**
 * Capabilities as a hostile job author meets them: a root task holds only
 * the allowed set (never SYS_ADMIN, SYS_MODULE, ...), a dynamic user holds
 * exactly its cap_add as ambient capabilities and nothing else, exec
 * sessions get the task's sets, a cap_add beyond allow_caps is refused with
 * a message naming the capability and the plugin option, and a setuid-root
 * binary gains nothing. Read from /proc/self/status on the real kernel.
 */
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, existsSync, readFileSync, statSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { NomadLikeClient } from '../../src/client/nomad-client';
import { PluginProcess } from '../../src/client/plugin-process';
import { CAPABILITY_NUMBERS as N, DEFAULT_ALLOW_CAPS } from '../../src/shared/capabilities';
import { expectStatus } from '../harness/assert-status';
import { skipUnless, startNomadOrSkip } from '../harness/skip';
import { CAP_STATUS, Canary, capLines, mask, runToEnd } from './helpers';

const ZERO = '0000000000000000';
const DEFAULT_MASK = mask(DEFAULT_ALLOW_CAPS.map((c) => N[c]!));

/** A loopback TCP port below 1024 that nothing listens on right now. */
async function freePrivilegedPort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 600 + Math.floor(Math.random() * 400);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port below 1024 on 127.0.0.1');
}

describe('security: capabilities (allow_caps, cap_add, cap_drop)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  let canary: Canary;

  before(async function () {
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
    nomad = await startNomadOrSkip(this, { unveil_by_task: true });
    canary = new Canary();
  });

  afterEach(() => canary?.assertUnchanged());

  after(async () => {
    canary?.remove();
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  it('the plugin itself still has the full bounding set (the test would prove nothing otherwise)', () => {
    const own = capLines(readFileSync('/proc/self/status', 'utf8'));
    assert.notEqual(own.CapBnd, DEFAULT_MASK);
    assert.ok((BigInt(`0x${own.CapBnd}`) >> BigInt(N.sys_admin!)) & 1n, 'the test runner lacks CAP_SYS_ADMIN');
  });

  it('a dynamic user has no capability at all, bounding set included', async () => {
    const r = await runToEnd(nomad, { command: 'sh', args: ['-c', CAP_STATUS], unveil: ['r:/proc'] });
    assert.equal(r.exit, 0, r.err);
    assert.deepEqual(capLines(r.out), { CapInh: ZERO, CapPrm: ZERO, CapEff: ZERO, CapBnd: ZERO, CapAmb: ZERO });
  });

  it('a root task holds exactly the allowed set (no SYS_ADMIN, SYS_MODULE, NET_ADMIN, SYS_PTRACE, BPF), and so does its exec session', async () => {
    const { task } = await nomad.run({ user: 'root', command: 'sh', args: ['-c', `${CAP_STATUS}; echo started; exec sleep 1000`], unveil: ['r:/proc'] });
    try {
      const out = await task.stdout!.waitFor(/started/);
      const want = { CapInh: ZERO, CapPrm: DEFAULT_MASK, CapEff: DEFAULT_MASK, CapBnd: DEFAULT_MASK, CapAmb: ZERO };
      assert.deepEqual(capLines(out), want);
      const s = await nomad.exec(task.config.id, ['sh', '-c', CAP_STATUS]);
      assert.equal(s.result.exitCode, 0, s.stderr);
      assert.deepEqual(capLines(s.stdout), want, 'the exec session differs from the task');
      // Not only the numbers: a capability outside the set really is gone
      // (CAP_SYS_NICE, harmless to the host even if it were granted).
      const m = await nomad.exec(task.config.id, ['python3', '-c', 'import os\ntry:\n    os.nice(-5); print("nice ALLOWED")\nexcept PermissionError as e:\n    print("nice denied", e.errno)']);
      assert.match(m.stdout, /^nice denied 1$/m, m.stdout + m.stderr);
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
    }
  });

  it('cap_drop removes from a root task\'s set; "all" then cap_add keeps only what is added (names case-insensitive, CAP_ optional)', async () => {
    const dropped = await runToEnd(nomad, { user: 'root', command: 'sh', args: ['-c', CAP_STATUS], unveil: ['r:/proc'], cap_drop: ['CAP_MKNOD', 'Kill', ' net_bind_service '] });
    assert.equal(dropped.exit, 0, dropped.err);
    const rest = DEFAULT_ALLOW_CAPS.filter((c) => !['mknod', 'kill', 'net_bind_service'].includes(c)).map((c) => N[c]!);
    assert.equal(capLines(dropped.out).CapBnd, mask(rest));
    assert.equal(capLines(dropped.out).CapEff, mask(rest));

    const only = await runToEnd(nomad, { user: 'root', command: 'sh', args: ['-c', `${CAP_STATUS}; chown 65534 "$NOMAD_TASK_DIR" && echo chown-ok`], unveil: ['r:/proc'], cap_drop: ['all'], cap_add: ['CHOWN'] });
    assert.deepEqual(capLines(only.out), { CapInh: ZERO, CapPrm: mask([N.chown!]), CapEff: mask([N.chown!]), CapBnd: mask([N.chown!]), CapAmb: ZERO });
    assert.match(only.out, /chown-ok/, only.err);
  });

  it('cap_add = ["net_bind_service"] lets a dynamic user bind a port below 1024, as ambient capability, and nothing else privileged', async () => {
    const port = await freePrivilegedPort();
    const script = [
      'import os, socket',
      `print(open("/proc/self/status").read())`,
      's = socket.socket()',
      `s.bind(("127.0.0.1", ${port}))`,
      's.listen(1)',
      'print("bound", s.getsockname()[1])',
      'for what, f in (("chown", lambda: os.chown(os.environ["NOMAD_TASK_DIR"], 0, 0)), ("setuid", lambda: os.setuid(0)), ("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))):',
      '    try:',
      '        f(); print(what, "ALLOWED")',
      '    except PermissionError as e:',
      '        print(what, "denied", e.errno)',
    ].join('\n');
    const r = await runToEnd(nomad, { command: 'python3', args: ['-c', script], unveil: ['r:/proc'], cap_add: ['net_bind_service'] });
    assert.equal(r.exit, 0, r.err);
    const nbs = mask([N.net_bind_service!]);
    assert.deepEqual(capLines(r.out), { CapInh: nbs, CapPrm: nbs, CapEff: nbs, CapBnd: nbs, CapAmb: nbs });
    assert.match(r.out, new RegExp(`^bound ${port}$`, 'm'));
    assert.match(r.out, /^chown denied 1$/m);
    assert.match(r.out, /^setuid denied 1$/m);
    assert.match(r.out, /^raw denied 1$/m);

    // The same job without cap_add cannot bind it: the capability made the difference.
    const without = await runToEnd(nomad, { command: 'python3', args: ['-c', `import socket\ntry:\n    socket.socket().bind(("127.0.0.1", ${port})); print("BOUND")\nexcept PermissionError:\n    print("denied")`] });
    assert.match(without.out, /^denied$/m, without.out + without.err);
  });

  it('an exec session into a dynamic-user task gets the task\'s ambient set', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/proc'], cap_add: ['cap_net_bind_service'] });
    try {
      const s = await nomad.exec(task.config.id, ['sh', '-c', CAP_STATUS]);
      const nbs = mask([N.net_bind_service!]);
      assert.deepEqual(capLines(s.stdout), { CapInh: nbs, CapPrm: nbs, CapEff: nbs, CapBnd: nbs, CapAmb: nbs });
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
    }
  });

  it('a cap_add outside allow_caps fails StartTask naming the capability and the plugin option; unknown names are INVALID_ARGUMENT', async () => {
    for (const [add, code, re] of [
      [['sys_admin'], grpc.status.FAILED_PRECONDITION, /"cap_add": sys_admin is not allowed by this client; the plugin option allow_caps permits only: chown, /],
      [['NET_RAW', 'sys_module'], grpc.status.FAILED_PRECONDITION, /net_raw, sys_module are not allowed .* allow_caps/],
      [['cap_bogus'], grpc.status.INVALID_ARGUMENT, /attribute "cap_add"\[0\]: "cap_bogus" is not a Linux capability/],
      [['all'], grpc.status.INVALID_ARGUMENT, /"cap_add"\[0\]: "all" is only accepted in cap_drop and allow_caps/],
    ] as const) {
      const task = nomad.prepareTask({ user: 'root', command: 'true', cap_add: [...add] });
      try {
        await expectStatus(nomad.startTask(task), code, re);
      } finally {
        nomad.releaseTask(task);
      }
    }
    const bad = nomad.prepareTask({ command: 'true', cap_drop: ['nope'] });
    await expectStatus(nomad.startTask(bad), grpc.status.INVALID_ARGUMENT, /attribute "cap_drop"\[0\]: "nope" is not a Linux capability/);
    nomad.releaseTask(bad);
    // The plugin keeps serving.
    const ok = await runToEnd(nomad, { command: 'true' });
    assert.equal(ok.exit, 0);
  });

  it('an operator\'s allow_caps widens what may be added; a bad allow_caps is refused by SetConfig', async () => {
    const p = await PluginProcess.start();
    const saved = nomad.plugin;
    try {
      nomad.plugin = p;
      await nomad.configure({ unveil_by_task: true, allow_caps: ['chown', 'SYS_PTRACE'] });
      const r = await runToEnd(nomad, { user: 'root', command: 'sh', args: ['-c', CAP_STATUS], unveil: ['r:/proc'], cap_add: ['sys_ptrace'] });
      assert.equal(capLines(r.out).CapBnd, mask([N.chown!, N.sys_ptrace!]));
      const refused = nomad.prepareTask({ user: 'root', command: 'true', cap_add: ['kill'] });
      await expectStatus(nomad.startTask(refused), grpc.status.FAILED_PRECONDITION, /kill is not allowed by this client; the plugin option allow_caps permits only: chown, sys_ptrace/);
      nomad.releaseTask(refused);
      await assert.rejects(nomad.configure({ allow_caps: ['root'] }), (e: grpc.ServiceError) => {
        assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
        assert.match(e.details, /attribute "allow_caps"\[0\]: "root" is not a Linux capability/);
        return true;
      });
    } finally {
      await p.kill();
      nomad.plugin = saved;
    }
  });

  it('an exec session after a plugin restart with a narrower allow_caps gets exactly the task\'s sets (RecoverTask)', async () => {
    const { task, handle } = await nomad.run({ user: 'root', command: 'sleep', args: ['1000'], unveil: ['r:/proc'], cap_drop: ['all'], cap_add: ['kill', 'net_bind_service'] });
    const want = mask([N.kill!, N.net_bind_service!]);
    const p = await PluginProcess.start();
    try {
      // Nomad's agent shutdown: the plugin exits, the task stays.
      await nomad.plugin.kill();
      nomad.plugin = p;
      await nomad.configure({ unveil_by_task: true, allow_caps: ['chown'] });
      await nomad.recover(handle);
      const s = await nomad.exec(task.config.id, ['sh', '-c', CAP_STATUS]);
      assert.equal(s.result.exitCode, 0, s.stderr);
      assert.equal(capLines(s.stdout).CapBnd, want);
      assert.equal(capLines(s.stdout).CapEff, want);
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
      // The rest of the suite runs on a plugin with the suite's own config.
      await p.kill();
      nomad.plugin = await PluginProcess.start();
      await nomad.configure({ unveil_by_task: true });
    }
  });

  it('a setuid-root binary gains nothing: no uid 0, no capability', async () => {
    const { task } = await nomad.run({ command: 'sleep', args: ['1000'], unveil: ['r:/proc'] });
    try {
      const suid = path.join(task.taskDir, 'local', 'suid-cat');
      copyFileSync('/bin/cat', suid);
      chownSync(suid, 0, 0);
      chmodSync(suid, 0o4755);
      assert.equal(statSync(suid).mode & 0o4000, 0o4000);
      const s = await nomad.exec(task.config.id, ['sh', '-c', `"$NOMAD_TASK_DIR/suid-cat" /proc/self/status`]);
      assert.equal(s.result.exitCode, 0, s.stderr);
      const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$/m.exec(s.stdout);
      assert.ok(uids, s.stdout);
      assert.deepEqual(uids.slice(1).map(Number), [task.uid, task.uid, task.uid, task.uid], 'the setuid bit took effect');
      assert.equal(capLines(s.stdout).CapEff, ZERO);
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
    }
  });
});
