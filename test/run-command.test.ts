/** `nomad-driver-exec2 run` end to end, and the README's demo. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUN_NAME } from '../src/cli/run';
import { ownCgroup } from '../src/client/cgroups';
import { PLUGIN_BIN } from '../src/client/plugin-process';
import { detectCgroupLayout } from '../src/shared/cgroups/detect';
import { PROJECT_ROOT } from '../src/native/binding';
import { isRoot, skipUnless } from './harness/skip';

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { onStdout?: (text: string, child: ReturnType<typeof spawn>) => void | Promise<void>; bin?: string[] } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const [cmd, ...pre] = opts.bin ?? [PLUGIN_BIN, 'run'];
    const child = spawn(cmd!, [...pre, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      void Promise.resolve(opts.onStdout?.(stdout, child)).catch(reject);
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
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

/** Cgroup directories below `top` whose name starts with one of `prefixes` (the whole subtree is walked). */
function cgroupDirsNamed(top: string, prefixes: readonly string[], out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(top, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return out; // removed while walking
  }
  for (const name of entries) {
    const dir = path.join(top, name);
    if (prefixes.some((p) => name.startsWith(p))) out.push(dir);
    cgroupDirsNamed(dir, prefixes, out);
  }
  return out;
}

/**
 * Where `run` may leave something: v1 each controller below this process's
 * own memory cgroup path (where run places its parent, and where a test
 * fixture would), v2 the whole tree (run's slice is at the root).
 */
function cgroupScanRoots(): string[] {
  const layout = detectCgroupLayout();
  if (layout.mode === 'v2') return [layout.root];
  const own = ownCgroup('memory');
  return [...new Set(layout.v1.values())].map((m) => path.join(m, own)).concat(layout.unified ? [layout.unified] : []);
}

/** A process by pid and start time (a pid alone could be reused). */
function processKey(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return `${pid}@${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
  } catch {
    return null;
  }
}

/**
 * Everything on this host that carries one of `names`: cgroups, entries of
 * /run and the temp dir, mounts, and processes started with the plugin's
 * socket dir in their environment (the plugin run starts).
 */
function residue(names: readonly string[]): string[] {
  const out: string[] = [];
  for (const top of cgroupScanRoots()) for (const d of cgroupDirsNamed(top, names)) out.push(`cgroup ${d}`);
  for (const dir of ['/run', os.tmpdir()]) for (const e of readdirSync(dir)) if (names.some((n) => e.startsWith(n))) out.push(`dir ${path.join(dir, e)}`);
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const mp = line.split(' ')[4] ?? '';
    if (names.some((n) => mp.includes(`/${n}`))) out.push(`mount ${mp}`);
  }
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    let env = '';
    try {
      env = readFileSync(`/proc/${e}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (names.some((n) => env.includes(`PLUGIN_UNIX_SOCKET_DIR=/run/${n}`))) out.push(`process ${processKey(Number(e)) ?? e}`);
  }
  return out;
}

describe('nomad-driver-exec2 run leaves nothing behind', function () {
  this.timeout(60_000);
  const PREFIXES = [`${RUN_NAME}-`, 'exec2-test-'];
  let allocDir: string;
  let baseline: string[];

  before(function () {
    skipUnless(this, isRoot(), 'the run command needs root');
  });
  beforeEach(() => {
    allocDir = mkdtempSync(path.join(os.tmpdir(), 'exec2-run-'));
    baseline = residue(PREFIXES);
  });
  afterEach(() => {
    assert.deepEqual(readdirSync(allocDir), [], 'run left files behind in --alloc-dir');
    rmSync(allocDir, { recursive: true, force: true });
    // Anything named like run's or a test fixture's that appeared during the test is a leak.
    assert.deepEqual(residue(PREFIXES).filter((r) => !baseline.includes(r)), [], 'left behind');
  });

  interface Seen {
    name: string;
    during: string[];
    taskPids: string[];
    cgroupLines: string;
  }

  /**
   * Run a task that prints its /proc/self/cgroup and then waits for a file;
   * while it waits, record what the run made, then `finish` it (create the
   * file, or send a signal to run).
   */
  async function observedRun(finish: (child: ReturnType<typeof spawn>, goFile: string) => void): Promise<{ r: Ran; seen: Seen }> {
    let seen: Seen | null = null;
    const script = 'cat /proc/self/cgroup; echo ready; while [ ! -e "$NOMAD_TASK_DIR/go" ]; do sleep 0.05; done; echo done';
    const r = await run(['--alloc-dir', allocDir, '--unveil', 'r:/proc', '--', 'sh', '-c', script], {
      onStdout: (text, child) => {
        if (seen || !text.endsWith('ready\n')) return;
        const entries = readdirSync(allocDir);
        assert.equal(entries.length, 1, `one data dir in --alloc-dir: ${entries.join(' ')}`);
        const name = entries[0]!;
        assert.match(name, new RegExp(`^${RUN_NAME}-`));
        const allocs = readdirSync(path.join(allocDir, name, 'data', 'alloc'));
        const during = residue([name]);
        // run's parent cgroups and every cgroup below them (the task's <alloc>.task)
        const taskDirs = during.filter((d) => d.startsWith('cgroup ')).map((d) => d.slice('cgroup '.length)).flatMap((d) => [d, ...cgroupDirsNamed(d, [''])]);
        const taskPids = [...new Set(taskDirs.flatMap((d) => readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)))]
          .map((p) => processKey(Number(p)))
          .filter((k): k is string => k !== null);
        seen = { name, during, taskPids, cgroupLines: text.slice(0, -'ready\n'.length) };
        finish(child, path.join(allocDir, name, 'data', 'alloc', allocs[0]!, 'task', 'local', 'go'));
      },
    });
    assert.ok(seen, `the task never said ready: ${r.stdout} ${r.stderr}`);
    return { r, seen };
  }

  function assertMadeAndRemoved(seen: Seen): void {
    const kinds = (k: string) => seen.during.filter((d) => d.startsWith(`${k} `));
    // What a Nomad client makes, named for this run: proves the scan sees it.
    assert.ok(kinds('cgroup').length >= 1, `no cgroup named ${seen.name} during the run: ${seen.during.join('\n')}`);
    assert.ok(kinds('dir').some((d) => d.endsWith(`/run/${seen.name}-state`)), 'state dir');
    assert.ok(kinds('dir').some((d) => d.endsWith(`/run/${seen.name}-sockets`)), 'socket dir');
    assert.ok(kinds('mount').length >= 2, 'the task view bind mounts');
    assert.equal(kinds('process').length, 1, 'the plugin process');
    assert.ok(seen.taskPids.length >= 1, 'task processes in the task cgroup');
    // The task's own cgroups are run's, never a test fixture's.
    assert.doesNotMatch(seen.cgroupLines, /exec2-test-/);
    assert.match(seen.cgroupLines, new RegExp(`^\\d+:[^:\\n]*memory[^:\\n]*:.*/${seen.name}(\\.slice)?/|^0::/${seen.name}\\.slice/`, 'm'));
    // ... and after: nothing of it, no task process alive.
    assert.deepEqual(residue([seen.name]), [], `left behind by ${seen.name}`);
    assert.deepEqual(seen.taskPids.filter((k) => processKey(Number(k.split('@')[0])) === k), [], 'task processes still alive');
  }

  it('a task that ends by itself: cgroups, dirs, mounts, socket, plugin and task processes all gone', async () => {
    const { r, seen } = await observedRun((_child, goFile) => writeFileSync(goFile, ''));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /done\n$/);
    assertMadeAndRemoved(seen);
  });

  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    it(`${sig} to run mid-task: the task is stopped and everything is removed`, async () => {
      const { r, seen } = await observedRun((child) => child.kill(sig));
      assert.equal(r.code, 130, r.stderr); // the task's sh died of the kill signal, SIGINT
      assert.match(r.stderr, /stopping task \(SIGINT/);
      assertMadeAndRemoved(seen);
    });
  }

  it('a task that cannot start, without --alloc-dir (the temp dir): nothing left either', async () => {
    const r = await run(['--', 'no-such-command-exec2']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /command not found/);
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
