/** Run one task to its end as Nomad would (Start, Wait, Destroy, post-stop hooks): its result and output. */
import type { NomadLikeClient, PreparedTask, TaskInput } from '../../src/client/nomad-client';

export interface Ended {
  task: PreparedTask;
  exit: number;
  signal: number;
  out: string;
  err: string;
  /** stdout then stderr */
  all: string;
}

export async function runToEnd(nomad: NomadLikeClient, input: TaskInput): Promise<Ended> {
  const { task } = await nomad.run(input);
  const r = await nomad.wait(task.config.id);
  await task.stdout?.drain();
  await task.stderr?.drain();
  const out = task.stdout?.text() ?? '';
  const err = task.stderr?.text() ?? '';
  await nomad.destroy(task.config.id, true);
  nomad.releaseTask(task);
  return { task, exit: r.result.exitCode, signal: r.result.signal, out, err, all: out + err };
}

/** `sh -c script` to its end. */
export const runScript = (nomad: NomadLikeClient, script: string, input: Partial<TaskInput> = {}): Promise<Ended> =>
  runToEnd(nomad, { ...input, command: 'sh', args: ['-c', script] });
