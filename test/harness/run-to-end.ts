/** Run one task to its end as Nomad would (Start, Wait, Destroy, post-stop hooks): its exit code and output. */
import type { NomadLikeClient, PreparedTask, TaskInput } from '../../src/client/nomad-client';

export interface Ended {
  code: number;
  /** stdout then stderr */
  out: string;
  task: PreparedTask;
}

export async function runToEnd(nomad: NomadLikeClient, input: TaskInput): Promise<Ended> {
  const { task } = await nomad.run(input);
  const { result } = await nomad.wait(task.config.id);
  await task.stdout!.drain();
  await task.stderr!.drain();
  const out = task.stdout!.text() + task.stderr!.text();
  await nomad.destroy(task.config.id, true);
  nomad.releaseTask(task);
  return { code: result.exitCode, out, task };
}

/** `sh -c script` to its end. */
export const runScript = (nomad: NomadLikeClient, script: string, input: Partial<TaskInput> = {}): Promise<Ended> =>
  runToEnd(nomad, { ...input, command: 'sh', args: ['-c', script] });
