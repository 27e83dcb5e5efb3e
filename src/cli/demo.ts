/**
 * `npm run demo`: the exec2 docs page's example, end to end through the real
 * plugin: python's http.server serving its task directory with
 * unveil = ["r:/etc/mime.types"], one page fetched and printed, then stopped
 * the way `nomad alloc stop` stops it.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { encodeTaskConfig, NomadLikeClient } from '../client/nomad-client';
import { freePort, httpGet, retry } from '../client/net-util';
import { messageOf } from '../shared/errors';

const log = (s: string): void => void process.stdout.write(`${s}\n`);

export async function demo(): Promise<number> {
  if (process.getuid?.() !== 0) {
    log('demo: must run as root (the driver sets users, cgroups and namespaces)');
    return 1;
  }
  let client: NomadLikeClient | null = null;
  let ok = false;
  try {
    client = new NomadLikeClient({ name: 'nomad-driver-exec2-demo', privateSocketDir: true });
    if (client.cgroups.skipReason) throw new Error(client.cgroups.skipReason);
    await client.startPlugin({ unveil_by_task: true });
    const port = await freePort();
    const task = client.prepareTask({ name: 'python', command: 'python3', unveil: ['r:/etc/mime.types'] });
    const taskDir = task.env.NOMAD_TASK_DIR!;
    // Nomad interpolates ${NOMAD_TASK_DIR} in the job before the driver sees it.
    const config = { command: 'python3', args: ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', taskDir], unveil: ['r:/etc/mime.types'] };
    task.config.msgpackDriverConfig = Buffer.from(encodeTaskConfig(config));
    writeFileSync(path.join(task.taskDir, 'local', 'index.html'), `<h1>Hello from an exec2 task</h1>\n<p>served by python3 as ${task.config.user}, confined by Landlock</p>\n`);
    log(`demo: job "http", task "python": ${config.command} ${config.args.join(' ')}`);
    log(`demo: unveil = ["r:/etc/mime.types"], user ${task.config.user}`);
    const t0 = process.hrtime.bigint();
    await client.startTask(task);
    log(`demo: StartTask answered in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)} ms`);
    const page = await retry(async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/`);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
      return r.body;
    }, 20_000);
    log(`demo: GET http://127.0.0.1:${port}/ ->`);
    process.stdout.write(page.replace(/^/gm, '    '));
    log('demo: stopping the task (SIGINT, 5 s grace) like `nomad alloc stop`');
    await client.stop(task.config.id, 5000);
    const r = await client.wait(task.config.id);
    await task.stderr?.drain();
    log(`demo: task exited: code ${r.result.exitCode}, signal ${r.result.signal}, oom ${r.result.oomKilled}`);
    const access = (task.stderr?.text() ?? '').split('\n').filter((l) => l.includes('GET /'));
    if (access.length) log(`demo: the task's stderr (via its log FIFO): ${access[0]}`);
    ok = page.includes('Hello from an exec2 task');
  } catch (err) {
    log(`demo: failed: ${(err as { details?: string }).details ?? messageOf(err)}`);
  } finally {
    const leftovers = client ? await client.cleanup() : [];
    for (const l of leftovers) log(`demo: cleanup: ${l}`);
  }
  log(ok ? 'demo: OK' : 'demo: FAILED');
  return ok ? 0 : 1;
}

if (require.main === module) {
  demo().then((code) => process.exit(code), (err: unknown) => {
    process.stderr.write(`demo: ${String(err)}\n`);
    process.exit(1);
  });
}
