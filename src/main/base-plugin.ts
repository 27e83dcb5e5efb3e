/** BasePlugin: identity, config schema and SetConfig (protocol reference §3.1, §5.2). */
import { PluginType, type BasePluginServer, type SetConfigRequest } from '../gen/hashicorp/nomad/plugins/base/base';
import { parsePluginConfig, PLUGIN_CONFIG_SPEC } from './config';
import { unary } from './grpc-util';
import type { Logger } from './log';
import type { PluginState } from './plugin-state';
import { computeFromTopology } from './topology';
import { PLUGIN_VERSION } from './version';

export const DRIVER_NAME = 'exec2';
// Spelled as the Go driver spells it; Nomad compares semantically and echoes it back.
export const PLUGIN_API_VERSION = 'v0.1.0';

export interface BasePluginHooks {
  /** the long-lived instance got its config: warm pools, start metrics */
  onConfigured?(state: PluginState): void | Promise<void>;
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
      // Without nomad_config this is Nomad's validation probe: validate, keep nothing.
      if (!req.nomadConfig) return {};
      state.config = config;
      state.compute = computeFromTopology(req.nomadConfig.driver?.Topology);
      logger.info('plugin configured', {
        unveil_defaults: config.unveilDefaults,
        unveil_by_task: config.unveilByTask,
        unveil_paths: config.unveilPaths.length,
        mhz_per_core: state.compute?.mhzPerCore ?? 0,
      });
      await hooks.onConfigured?.(state);
      return {};
    }),
  };
}
