/**
 * The plugin process: checks it was started by Nomad, serves every service
 * on one unix socket, prints the handshake, and shuts down on request
 * without touching tasks.
 */
import * as grpc from '@grpc/grpc-js';
import { BasePluginService } from '../gen/hashicorp/nomad/plugins/base/base';
import { DriverService } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import { serializeTaskStatsResponse } from './stats/collector';
import { INIT_HELPER_PATH, loadNative } from '../native/binding';
import { basePluginServer } from './rpc/base-plugin';
import { detectCgroupLayout } from '../shared/cgroups/detect';
import { driverServer } from './rpc/driver-service';
import { addGoPluginServices, applySocketGroup, checkCookie, handshakeLine, HandshakeError, negotiateVersion, removeSocket, socketDirFor, socketPathFor } from './rpc/go-plugin';
import { PiscinaLauncher } from './launcher';
import { rootLogger } from './log';
import { PluginState } from './config/plugin-state';
import { TaskManager } from './tasks/task-manager';
import { gatherHostFacts } from './fingerprint';
import type { MetricsServer } from './metrics';
import type { PluginConfig } from './config/config';
import { PLUGIN_VERSION } from './version';
import { warmPlanner } from './warm-up';
import { pluginDirsOf } from './tasks/launch-plan';
import type { Compute } from '../shared/topology';

/** Nomad may send large StartTask payloads (big environments). */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export function servePlugin(): void {
  // Nothing but the handshake may reach stdout, and a broken pipe must not kill us.
  process.stdout.on('error', () => undefined);
  const logger = rootLogger();
  let version: number;
  try {
    checkCookie(process.env);
    version = negotiateVersion(process.env);
  } catch (err) {
    if (err instanceof HandshakeError) {
      try {
        process.stderr.write(err.message);
      } catch {
        // nowhere left to complain
      }
      process.exit(1);
    }
    throw err;
  }
  // go-plugin ignores SIGINT: we share Nomad's process group and must not die with a Ctrl-C.
  process.on('SIGINT', () => logger.debug('ignoring SIGINT'));
  process.on('uncaughtException', (err) => {
    logger.error('uncaught exception; exiting (tasks keep running)', { error: err.stack ?? err.message });
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.error('unhandled rejection; exiting (tasks keep running)', { error: err instanceof Error ? err.stack ?? err.message : String(err) });
    process.exit(1);
  });

  const state = new PluginState();
  const launcher = new PiscinaLauncher();
  const tasks = new TaskManager({ native: loadNative, launcher, logger, plugin: state, layout: detectCgroupLayout });
  const server = new grpc.Server({
    'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  });
  state.socketDir = socketDirFor(process.env);
  const socketPath = socketPathFor(process.env, state.socketDir);
  let stopping = false;
  const shutdown = (): void => {
    if (stopping) return;
    stopping = true;
    logger.debug('plugin shutting down');
    server.forceShutdown();
    tasks.killExecSessions();
    removeSocket(socketPath);
    // Exit promptly: go-plugin waits only 2 s before SIGKILL. Tasks live on.
    setImmediate(() => process.exit(0));
  };
  process.on('SIGTERM', shutdown);
  addGoPluginServices(server, { onShutdown: shutdown });
  let metricsServer: MetricsServer | null = null;
  const onConfigured = async (config: PluginConfig, compute: Compute | null): Promise<void> => {
    // The pool's threads, worker code and addon are ready before SetConfig
    // answers, so the first StartTask (Nomad sends none before) finds them.
    await launcher.warm();
    // and this thread's planning code compiled, its caches warm (main/warm-up.ts)
    // with the plugin dirs StartTask passes, so the per-config plan part it fills is the one StartTask uses
    warmPlanner(config, compute, detectCgroupLayout(), INIT_HELPER_PATH, pluginDirsOf(state.socketDir));
    const addr = config.metricsAddress;
    if (addr && !metricsServer) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- prom-client loads only in the long-lived instance that asked for metrics
      const { DriverMetrics, MetricsServer } = require('./metrics') as typeof import('./metrics');
      const facts = gatherHostFacts();
      const metrics = new DriverMetrics(() => tasks, launcher, {
        perTask: config.metricsPerTask,
        info: { landlockAbi: facts.landlockAbi, cgroupMode: facts.cgroups.mode, version: PLUGIN_VERSION },
      });
      const srv = new MetricsServer(metrics, logger);
      await srv.listen(addr);
      metricsServer = srv;
      tasks.observe(metrics);
    }
  };
  server.addService(BasePluginService, basePluginServer(state, logger, { onConfigured }));
  // TaskStats responses carry their bytes, encoded once per sample (stats/collector.ts)
  const driverService = { ...DriverService, taskStats: { ...DriverService.taskStats, responseSerialize: serializeTaskStatsResponse } };
  server.addService(driverService, driverServer(state, tasks, logger));
  server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) {
      logger.error('cannot listen on unix socket', { path: socketPath, error: err.message });
      process.exit(1);
    }
    try {
      applySocketGroup(socketPath, process.env);
    } catch (e) {
      logger.error('cannot apply PLUGIN_UNIX_SOCKET_GROUP', { error: e });
      removeSocket(socketPath);
      process.exit(1);
    }
    process.stdout.write(handshakeLine(socketPath, version));
    logger.debug('plugin serving', { path: socketPath, pid: process.pid });
  });
}
