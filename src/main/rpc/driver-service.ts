/** The Driver gRPC service: protocol in, TaskManager calls out. */
import {
  DriverCapabilities_FSIsolation as FSIsolation,
  DriverCapabilities_MountConfigs as MountConfigs,
  NetworkIsolationSpec_NetworkIsolationMode as NetMode,
  TaskState,
  type DriverCapabilities,
  type DriverServer,
  type FingerprintResponse,
  type TaskStatus,
} from '../../gen/hashicorp/nomad/plugins/drivers/driver';
import { TASK_CONFIG_SPEC } from '../config/config';
import { DriverError } from '../../shared/errors';
import { toServiceError } from './service-error';
import { fingerprintFailure, fingerprintFromFacts, FINGERPRINT_PERIOD_MS, gatherHostFacts } from '../fingerprint';
import { execTaskStreaming } from '../exec/exec-streaming';
import { execTask } from '../exec/exec-task';
import { unary } from './grpc-util';
import type { Logger } from '../log';
import type { PluginState } from '../config/plugin-state';
import type { TaskManager } from '../tasks/task-manager';
import { completedAtOf, exitOf, isRunning, type TaskEventsSink, type TaskRecord } from '../tasks/task-record';
import { StatsSample, TaskStatsCollector } from '../stats/collector';
import { StatsScheduler } from '../stats/scheduler';
import { durationMs, toTimestamp } from './time';

/**
 * The abort reason of a WaitTask whose call went away. Shared: abort()
 * without a reason builds a DOMException with a stack for every call
 * (grpc-js reports 'cancelled' at the end of each one), ~1 % of the main
 * thread in a launch burst, and nothing reads it.
 */
const CALL_GONE = Object.freeze({ reason: 'WaitTask call ended' });

export const CAPABILITIES: DriverCapabilities = {
  sendSignals: true,
  exec: true,
  fsIsolation: FSIsolation.UNVEIL,
  networkIsolationModes: [NetMode.NONE, NetMode.HOST, NetMode.GROUP],
  mustCreateNetwork: false,
  // host and CSI volumes: bind mounts of the task's own mount namespace (tasks/volumes.ts)
  mountConfigs: MountConfigs.ANY_MOUNTS,
  disableLogCollection: false,
  dynamicWorkloadUsers: true,
};

export function taskStatus(t: TaskRecord): TaskStatus {
  const exit = exitOf(t);
  return {
    id: t.config.id,
    name: t.config.name,
    state: isRunning(t) ? TaskState.RUNNING : exit?.err ? TaskState.UNKNOWN : TaskState.EXITED,
    startedAt: toTimestamp(t.startedAt),
    completedAt: toTimestamp(completedAtOf(t)),
    result: exit?.result ?? { exitCode: 0, signal: 0, oomKilled: false },
  };
}

const unimplemented = (what: string): DriverError => new DriverError('UNIMPLEMENTED', `${what} is not supported by the exec2 driver`);

/**
 * The TaskStats scheduler of a driver service: one timer per interval, one
 * collector (kept fds, previous counters) per task per interval.
 */
export function taskStatsScheduler(state: PluginState, tasks: TaskManager): StatsScheduler<StatsSample> {
  return new StatsScheduler<StatsSample>((taskId) => {
    const task = tasks.get(taskId);
    if (!task) return { running: () => false, sample: () => { throw new DriverError('NOT_FOUND', 'task not found for given id'); }, close: () => undefined };
    const collector = new TaskStatsCollector({ id: task.config.id, startedAt: task.startedAt, state: task.state }, { keepOpen: true });
    return {
      // a destroyed and re-registered id is another task: the stream of this one ends
      running: () => isRunning(task) && tasks.get(taskId) === task,
      sample: (now) => collector.sample(state.compute?.mhzPerCore ?? 0, 'cadence', now),
      close: () => collector.close(),
    };
  });
}

export function driverServer(state: PluginState, tasks: TaskManager, logger: Logger, stats = taskStatsScheduler(state, tasks)): DriverServer {
  return {
    init: unary(logger, 'Init', () => ({})),
    shutdown: unary(logger, 'Shutdown', () => ({})), // tasks must outlive us: nothing to do
    taskConfigSchema: unary(logger, 'TaskConfigSchema', () => ({ spec: TASK_CONFIG_SPEC })),
    capabilities: unary(logger, 'Capabilities', () => ({ capabilities: CAPABILITIES })),

    fingerprint(call) {
      const send = (): void => {
        let answer: FingerprintResponse;
        try {
          answer = fingerprintFromFacts(gatherHostFacts(), state.effectiveConfig);
        } catch (err) {
          logger.error('fingerprint failed', { error: err });
          answer = fingerprintFailure(err, state.effectiveConfig);
        }
        try {
          call.write(answer);
        } catch (err) {
          logger.warn('fingerprint not sent', { error: err });
        }
      };
      send();
      const timer = setInterval(send, FINGERPRINT_PERIOD_MS);
      const stop = (): void => {
        clearInterval(timer);
      };
      call.on('cancelled', () => {
        stop();
        call.end();
      });
      call.on('close', stop);
      call.on('error', stop);
    },

    taskEvents(call) {
      // Open for the plugin's lifetime; Nomad shows each event on the task.
      const sink: TaskEventsSink = {
        onDriverEvent(task, message, annotations) {
          call.write({ taskId: task.config.id, allocId: task.config.allocId, taskName: task.config.name, timestamp: toTimestamp(new Date()), message, annotations });
        },
      };
      tasks.observe(sink);
      const stop = (): void => tasks.unobserve(sink);
      call.on('cancelled', () => {
        stop();
        call.end();
      });
      call.on('close', stop);
      call.on('error', stop);
    },

    startTask: unary(logger, 'StartTask', async (req) => {
      if (!req.task) throw new DriverError('INVALID_ARGUMENT', 'StartTask needs a task config');
      const { handle } = await tasks.start(req.task);
      return { result: 0, driverErrorMsg: '', handle };
    }),

    waitTask: unary(logger, 'WaitTask', async (req, call) => {
      const abort = new AbortController();
      call.on('cancelled', () => abort.abort(CALL_GONE));
      const exit = await tasks.wait(req.taskId, abort.signal);
      return { result: exit.result, err: exit.err };
    }),

    stopTask: unary(logger, 'StopTask', async (req) => {
      await tasks.stop(req.taskId, durationMs(req.timeout), req.signal);
      return {};
    }),

    destroyTask: unary(logger, 'DestroyTask', async (req) => {
      await tasks.destroy(req.taskId, req.force);
      return {};
    }),

    inspectTask: unary(logger, 'InspectTask', (req) => {
      const t = tasks.inspect(req.taskId);
      return { task: taskStatus(t), driver: { attributes: { pid: String(t.state.pid) } } };
    }),

    signalTask: unary(logger, 'SignalTask', (req) => {
      tasks.signal(req.taskId, req.signal);
      return {};
    }),

    recoverTask: unary(logger, 'RecoverTask', (req) => {
      tasks.recover(req.handle);
      return {};
    }),

    taskStats(call) {
      const id = call.request.taskId;
      const interval = Math.max(100, durationMs(call.request.collectionInterval) || 1000);
      if (!tasks.get(id)) {
        call.emit('error', toServiceError(new DriverError('NOT_FOUND', 'task not found for given id')));
        return;
      }
      // the response is the sample's own message: the service's serializer
      // (server.ts) sends its bytes, encoded once
      const unsubscribe = stats.subscribe(id, interval, { write: (s) => call.write(s.response), end: () => call.end() });
      call.on('cancelled', unsubscribe);
      call.on('error', unsubscribe);
      call.on('close', unsubscribe);
    },

    execTask: unary(logger, 'ExecTask', (req, call) => execTask(tasks, req, call)),
    execTaskStreaming: execTaskStreaming(tasks, logger),
    createNetwork: unary(logger, 'CreateNetwork', () => {
      throw unimplemented('CreateNetwork');
    }),
    destroyNetwork: unary(logger, 'DestroyNetwork', () => {
      throw unimplemented('DestroyNetwork');
    }),
  };
}
