/** What SetConfig established for the long-lived plugin instance. */
import { DEFAULT_PLUGIN_CONFIG, type PluginConfig } from './config';
import type { Compute } from '../../shared/topology';

export class PluginState {
  /** null until SetConfig with nomad_config (the real instance) arrives */
  config: PluginConfig | null = null;
  compute: Compute | null = null;
  /** where our gRPC socket lives (set at start-up): hidden from every task */
  socketDir: string | null = null;

  /** Config for read-only uses (fingerprint) before SetConfig. */
  get effectiveConfig(): PluginConfig {
    return this.config ?? DEFAULT_PLUGIN_CONFIG;
  }
}
