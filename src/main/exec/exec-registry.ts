/**
 * The exec sessions of this plugin process (nomad alloc exec, script
 * checks): how a session's sandbox is reproduced from its task, the sessions
 * whose command still runs (killed when the plugin goes away), and the relay
 * of how each ended to the task observers (metrics).
 */
import type { Exec2Native } from '../../native/binding';
import { failedPrecondition } from '../../shared/errors';
import type { Compute } from '../../shared/topology';
import type { PluginConfig } from '../config/config';
import { parseTaskConfig } from '../config/config';
import type { Launcher } from '../launcher';
import type { Logger } from '../log';
import { taskSandbox, type SandboxBlock, type TaskSandbox } from '../tasks/sandbox';
import type { TaskEvents } from '../tasks/task-events';
import { livePidfd, type ExecOutcome, type TaskRecord } from '../tasks/task-record';
import { ExecSession, type ExecSessionOptions } from './exec-session';

/** What the exec RPCs (exec-task.ts, exec-streaming.ts) need from the plugin. */
export interface ExecHost {
  /** NOT_FOUND for an unknown task, FAILED_PRECONDITION when it is not running; ExecStartError when the command cannot start */
  startExec(taskId: string, opts: ExecSessionOptions): Promise<ExecSession>;
  /** how a session ended, for the metrics */
  execEnded(outcome: ExecOutcome): void;
}

export interface ExecRegistryDeps {
  native: () => Exec2Native;
  launcher: Launcher;
  logger: Logger;
  initPath: string;
  events: TaskEvents;
}

/**
 * The sandbox of a session in `task`: recomputed by the function StartTask
 * used, from the config block (or, after an agent restart, which does not
 * persist it, the parts the handle kept), with exactly the task's own
 * capabilities and abstract-socket scope whatever the plugin config says
 * now (handles from older versions: recomputed). With the recorded sets,
 * cap_add is not checked against today's allow_caps: the session must
 * neither fail nor differ because the operator changed it.
 */
export function execSandbox(task: TaskRecord, config: PluginConfig, pluginDirs: readonly string[], compute: Compute | null): TaskSandbox {
  const handleConfig = task.config;
  const block: SandboxBlock | undefined = handleConfig.msgpackDriverConfig.length > 0 ? parseTaskConfig(handleConfig.msgpackDriverConfig) : task.state.sandbox;
  if (!block) throw failedPrecondition(`task ${handleConfig.id} was started by a plugin version without exec support; its sandbox cannot be reproduced (restart the task to enable exec)`);
  const caps = task.state.caps;
  const computed = taskSandbox(handleConfig, caps ? { ...block, capAdd: [], capDrop: [] } : block, config, pluginDirs, { cgroup: task.state.cgroup, compute });
  return {
    ...computed,
    caps: caps ? { root: caps, user: caps } : computed.caps,
    scopeAbstractUnixSockets: task.state.scopeAbstractUnixSockets ?? computed.scopeAbstractUnixSockets,
  };
}

export class ExecRegistry {
  /** sessions whose command has not exited yet */
  private readonly sessions = new Set<ExecSession>();

  constructor(private readonly deps: ExecRegistryDeps) {}

  get size(): number {
    return this.sessions.size;
  }

  /** Start a session in `task` (which must be running), confined like the task; tracked until its command exits. */
  async start(task: TaskRecord, sandbox: () => TaskSandbox, opts: ExecSessionOptions): Promise<ExecSession> {
    if (livePidfd(task) === null) throw failedPrecondition(`task ${task.config.id} is not running`);
    const { native, launcher, initPath, logger } = this.deps;
    const session = await ExecSession.start({ native, launcher, initPath, logger }, { task, sandbox: sandbox() }, opts);
    this.sessions.add(session);
    void session.exit.then(() => this.sessions.delete(session));
    return session;
  }

  /** The plugin is going away: its sessions' streams go with it, so their commands must too. */
  killAll(): void {
    for (const s of this.sessions) s.kill();
  }

  ended(outcome: ExecOutcome): void {
    this.deps.events.notify((o) => o.onExecSession?.(outcome));
  }
}
