/** `nomad-driver-exec2 run` end to end, and the README's demo. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PLUGIN_BIN } from '../src/client/plugin-process';
import { PROJECT_ROOT } from '../src/native/binding';
import { isRoot, skipUnless } from './harness/skip';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void; bin?: string[] } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const [cmd, ...pre] = opts.bin ?? [PLUGIN_BIN, 'run'];
    const child = spawn(cmd!, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      opts.onStdout?.(stdout, child);
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('nomad-driver-exec2 run', function () {
  this.timeout(60_000);
  let allocDir: string;

  before(function () {
    skipUnless(this, isRoot(), 'the run command needs root');
  });
  beforeEach(() => {
    allocDir = mkdtempSync(path.join(os.tmpdir(), 'exec2-run-'));
  });
  afterEach(() => {
    // Everything the command made lives below --alloc-dir; it must be gone.
    assert.deepEqual(readdirSync(allocDir), [], 'run left files behind');
    rmSync(allocDir, { recursive: true, force: true });
  });

  it('streams stdout and stderr and exits with the task\'s code', async () => {
    const r = await run(['--alloc-dir', allocDir, '--', 'sh', '-c', 'echo hello; echo oops >&2; exit 7']);
    assert.equal(r.code, 7);
    assert.equal(r.stdout, 'hello\n');
    assert.match(r.stderr, /^oops$/m);
    assert.match(r.stderr, /^exec2: exit 7, oom no, wall \d+\.\d+s, launch \d+\.\d+ms$/m);
  });

  it('exits 128+N when a signal ends the task', async () => {
    const r = await run(['--alloc-dir', allocDir, '--quiet', '--', 'sh', '-c', 'kill -TERM $$']);
    assert.equal(r.code, 143);
    assert.equal(r.stderr, '');
  });

  it('stops the task on Ctrl-C with the kill signal, like nomad alloc stop', async () => {
    const r = await run(['--alloc-dir', allocDir, '--', 'sh', '-c', 'trap "echo got-int; exit 5" INT; echo ready; while :; do sleep 0.05; done'], {
      onStdout: (text, child) => {
        if (text === 'ready\n') child.kill('SIGINT');
      },
    });
    assert.equal(r.code, 5);
    assert.equal(r.stdout, 'ready\ngot-int\n');
    assert.match(r.stderr, /stopping task \(SIGINT/);
  });

  it('kills a task that ignores the kill signal after --kill-timeout', async () => {
    const r = await run(['--alloc-dir', allocDir, '--kill-timeout', '300ms', '--kill-signal', 'SIGTERM', '--', 'sh', '-c', 'trap "" TERM INT; echo ready; while :; do sleep 0.05; done'], {
      onStdout: (text, child) => {
        if (text === 'ready\n') child.kill('SIGINT');
      },
    });
    assert.equal(r.code, 137);
    assert.match(r.stderr, /exec2: exit 137 \(signal 9\)/);
  });

  it('passes task options through: unveil, env, memory, user', async () => {
    const r = await run(['--alloc-dir', allocDir, '--unveil', 'r:/etc/mime.types', '--env', 'GREETING=hi', '--memory', '64', '--', 'sh', '-c', 'echo $GREETING $USER; head -c 10 /etc/mime.types >/dev/null && echo readable']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^hi nomad-\d+\nreadable\n$/);
  });

  it('passes capability and pids options through: --allow-cap, --cap-add, --cap-drop, --pids-max', async () => {
    const r = await run(['--alloc-dir', allocDir, '--user', 'root', '--unveil', 'r:/proc', '--allow-cap', 'chown', '--allow-cap', 'kill', '--cap-drop', 'all', '--cap-add', 'kill', '--pids-max', '50', '--', 'grep', '^CapBnd', '/proc/self/status']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'CapBnd:\t0000000000000020\n');
    const refused = await run(['--alloc-dir', allocDir, '--cap-add', 'sys_admin', '--', 'true']);
    assert.equal(refused.code, 125);
    assert.match(refused.stderr, /sys_admin is not allowed by this client; the plugin option allow_caps/);
  });

  it('runs the first exec2 task of a job in Nomad\'s JSON form', async () => {
    const jobDir = mkdtempSync(path.join(os.tmpdir(), 'exec2-job-'));
    const file = path.join(jobDir, 'job.json');
    writeFileSync(file, JSON.stringify({
      Job: {
        ID: 'demo',
        TaskGroups: [{
          Name: 'g',
          Tasks: [
            { Name: 'other', Driver: 'docker', Config: { image: 'x' } },
            {
              Name: 't', Driver: 'exec2', User: '', Env: { WHO: 'job' },
              Config: { command: 'sh', args: ['-c', 'echo $WHO; head -c 4 /etc/mime.types >/dev/null && echo ok; exit 9'], unveil: ['r:/etc/mime.types'] },
              Resources: { CPU: 200, MemoryMB: 64 }, KillTimeout: 2e9, KillSignal: 'SIGTERM',
            },
          ],
        }],
      },
    }));
    try {
      const r = await run(['--alloc-dir', allocDir, file]);
      assert.equal(r.code, 9, r.stderr);
      assert.equal(r.stdout, 'job\nok\n');
    } finally {
      rmSync(jobDir, { recursive: true, force: true });
    }
  });

  it('reports a driver error in one line without a stack trace', async () => {
    const r = await run(['--alloc-dir', allocDir, '--', 'no-such-command-exec2']);
    assert.equal(r.code, 125);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^nomad-driver-exec2 run: command not found: "no-such-command-exec2"/);
  });

  it('rejects bad usage with exit 2 and the usage text', async () => {
    const r = await run(['--alloc-dir', allocDir, '--cpu', 'lots', '--', 'true']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--cpu expects a whole number/);
    assert.match(r.stderr, /usage: nomad-driver-exec2 run/);
  });
});

describe('the README demo (npm run demo)', function () {
  this.timeout(120_000);
  it('serves a page from the docs example task and stops it', async function () {
    skipUnless(this, isRoot(), 'the demo needs root');
    skipUnless(this, existsSync('/usr/bin/python3'), '/usr/bin/python3 is not installed (apt-get install python3)');
    const r = await run([], { bin: [process.execPath, path.join(PROJECT_ROOT, 'dist', 'src', 'cli', 'demo.js')] });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /Hello from an exec2 task/);
    assert.match(r.stdout, /demo: OK$/m);
  });
});
