/**
 * Abstract unix sockets are not files, so no unveil rule covers them; in
 * the host network mode a task could reach every abstract socket of the
 * host (the shape of CVE-2020-15257). On Landlock ABI 6+ every task's
 * domain scopes them: a connect to a host listener is refused, while two
 * processes of the same task still talk; the plugin option turns it off.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { NomadLikeClient } from '../../src/client/nomad-client';
import { PluginProcess } from '../../src/client/plugin-process';
import { loadNative } from '../../src/native/binding';
import { skipUnless, startNomadOrSkip } from '../harness/skip';
import { Canary, runToEnd } from './helpers';

const PROBE = [
  'import os, socket, sys',
  'name = sys.argv[1]',
  's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
  'try:',
  '    s.connect("\\0" + name); print("host ALLOWED")',
  'except OSError as e:',
  '    print("host denied", e.errno)',
  'srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
  'srv.bind("\\0" + name + "-task"); srv.listen(1)',
  'pid = os.fork()',
  'if pid == 0:',
  '    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.connect("\\0" + name + "-task"); c.sendall(b"hello"); os._exit(0)',
  'conn, _ = srv.accept()',
  'print("internal", conn.recv(5).decode())',
  'os.waitpid(pid, 0)',
].join('\n');

/**
 * A host process listening on an abstract socket and counting who
 * connects. Python, not Node: Node binds abstract names padded with NULs to
 * the full sun_path, which no ordinary client would connect to.
 */
async function hostListener(): Promise<{ name: string; connections: () => number; close: () => Promise<void> }> {
  const name = `exec2-test-${randomBytes(6).toString('hex')}`;
  const child = spawn('python3', ['-u', '-c', [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)',
    's.bind("\\0" + sys.argv[1]); s.listen(8)',
    'print("listening")',
    'while True:',
    '    c, _ = s.accept(); print("conn"); c.close()',
  ].join('\n'), name], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (b: Buffer) => {
    text += b.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (text.includes('listening')) {
        clearInterval(t);
        resolve();
      }
    }, 10);
    child.once('exit', (code) => {
      clearInterval(t);
      reject(new Error(`abstract socket listener exited with ${code}`));
    });
  });
  const closed = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    name,
    connections: () => text.split('\n').filter((l) => l === 'conn').length,
    close: async () => {
      child.kill('SIGKILL');
      await closed;
    },
  };
}

describe('security: abstract unix sockets are scoped to the task (Landlock ABI 6+)', function () {
  this.timeout(120_000);
  let nomad: NomadLikeClient;
  let canary: Canary;

  before(async function () {
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
    nomad = await startNomadOrSkip(this);
    const abi = loadNative().landlockAbi().abi;
    // Not a core-suite skip: CI kernels older than 6.12 are documented as unprotected.
    skipUnless(this, abi >= 6, `Landlock ABI ${abi} has no LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (needs ABI 6, Linux 6.12); abstract sockets are not protected there`, { core: false });
    canary = new Canary();
  });

  afterEach(() => canary?.assertUnchanged());

  after(async () => {
    canary?.remove();
    if (nomad) assert.deepEqual(await nomad.cleanup(), [], 'cgroups left behind');
  });

  it('a task cannot connect to a host listener, its own processes still talk', async () => {
    const host = await hostListener();
    try {
      const r = await runToEnd(nomad, { command: 'python3', args: ['-c', PROBE, host.name] });
      assert.equal(r.exit, 0, r.err);
      assert.match(r.out, /^host denied 1$/m, r.out);
      assert.match(r.out, /^internal hello$/m, r.out);
      assert.equal(host.connections(), 0, 'the host listener was reached');
    } finally {
      await host.close();
    }
  });

  it('a root task and an exec session are refused too', async () => {
    const host = await hostListener();
    const { task } = await nomad.run({ user: 'root', command: 'sleep', args: ['1000'] });
    try {
      const s = await nomad.exec(task.config.id, ['python3', '-c', PROBE, host.name]);
      assert.equal(s.result.exitCode, 0, s.stderr);
      assert.match(s.stdout, /^host denied 1$/m, s.stdout);
      assert.match(s.stdout, /^internal hello$/m, s.stdout);
      assert.equal(host.connections(), 0, 'the host listener was reached');
    } finally {
      await nomad.stop(task.config.id, 200);
      await nomad.destroy(task.config.id, true);
      nomad.releaseTask(task);
      await host.close();
    }
  });

  it('scope_abstract_unix_sockets = false lets a task reach it again (what the scope prevents)', async () => {
    const host = await hostListener();
    const p = await PluginProcess.start();
    const saved = nomad.plugin;
    nomad.plugin = p;
    try {
      await nomad.configure({ scope_abstract_unix_sockets: false });
      const r = await runToEnd(nomad, { command: 'python3', args: ['-c', PROBE, host.name] });
      assert.match(r.out, /^host ALLOWED$/m, r.out + r.err);
      // The listener reports the accept on its own schedule.
      for (let i = 0; i < 500 && host.connections() === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(host.connections(), 1);
    } finally {
      await p.kill();
      nomad.plugin = saved;
      await host.close();
    }
  });
});
