/** BasePlugin: identity, config schema and SetConfig (protocol reference §3.1, §5.2). */
import { PluginType, type BasePluginServer, type SetConfigRequest } from '../../gen/hashicorp/nomad/plugins/base/base';
import { detectCgroupLayout } from '../../shared/cgroups/detect';
import { parsePluginConfig, PLUGIN_CONFIG_SPEC, type PluginConfig } from '../config/config';
import { invalidConfig } from '../../shared/errors';
import { exposure, hiddenDirs } from '../tasks/sandbox';
import { parseUnveil } from '../../shared/unveil';
import { unary } from './grpc-util';
import type { Logger } from '../log';
import type { PluginState } from '../config/plugin-state';
import { computeFromTopology, type Compute } from '../../shared/topology';
import { PLUGIN_VERSION } from '../version';

export const DRIVER_NAME = 'exec2';
// Spelled as the Go driver spells it; Nomad compares semantically and echoes it back.
export const PLUGIN_API_VERSION = 'v0.1.0';

export interface BasePluginHooks {
  /**
   * The long-lived instance is about to take `config`: warm pools, start
   * metrics. Runs before the config is applied; if it throws, SetConfig
   * fails and the previous config (or none) stays in force.
   */
  onConfigured?(config: PluginConfig, compute: Compute | null): void | Promise<void>;
}

export function basePluginServer(state: PluginState, logger: Logger, hooks: BasePluginHooks = {}): BasePluginServer {
  return {
    pluginInfo: unary(logger, 'PluginInfo', () => ({
      type: PluginType.DRIVER,
      pluginApiVersions: [PLUGIN_API_VERSION],
      pluginVersion: PLUGIN_VERSION,
      name: DRIVER_NAME,
    })),
    configSchema: unary(logger, 'ConfigSchema', () => ({ spec: PLUGIN_CONFIG_SPEC })),
    setConfig: unary(logger, 'SetConfig', async (req: SetConfigRequest) => {
      const config = parsePluginConfig(req.msgpackConfig);
      const exposed = exposure(config.unveilPaths.map((s) => parseUnveil(s)), hiddenDirs(config, state.socketDir ? [state.socketDir] : []));
      if (exposed) throw invalidConfig(`plugin config: attribute "unveil_paths": ${exposed}`);
      // Without nomad_config this is Nomad's validation probe: validate, keep nothing.
      if (!req.nomadConfig) return {};
      const compute = computeFromTopology(req.nomadConfig.driver?.Topology);
      // Everything that can fail comes first: an error reply must leave the
      // plugin exactly as it was.
      await hooks.onConfigured?.(config, compute);
      state.config = config;
      state.compute = compute;
      logger.info('plugin configured', {
        unveil_defaults: config.unveilDefaults,
        unveil_by_task: config.unveilByTask,
        unveil_paths: config.unveilPaths.length,
        mhz_per_core: state.compute?.mhzPerCore ?? 0,
      });
      hintCgroupJoinLatency(logger);
      return {};
    }),
  };
}

/**
 * On cgroup v1 a task joins its cgroups by writing cgroup.procs. Since Linux
 * 6.0 the first such write after a quiet spell waits for an RCU grace period
 * (5-20 ms measured) unless the host opted into `favordynmods`; v2 hosts
 * clone tasks straight into their cgroup and never wait. Say so once, with
 * the fix, because it dominates the latency of a lone StartTask.
 */
function hintCgroupJoinLatency(logger: Logger): void {
  const layout = detectCgroupLayout();
  if ((layout.mode !== 'v1' && layout.mode !== 'hybrid') || layout.favorDynmods) return;
  logger.info('cgroup v1: the first task start after an idle spell waits an RCU grace period to join its cgroups; boot with cgroup_favordynmods=true (Linux 6.7+) or mount a cgroup hierarchy with favordynmods (6.0+) to avoid it; see docs/operators.md', {
    cgroup_mode: layout.mode,
  });
}
