/** Listen addresses in the plugin config. */
import { invalidConfig } from '../../shared/errors';

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseListenAddress(addr: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(addr.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw invalidConfig(`plugin config: attribute "metrics_address": "${addr}" is not host:port (e.g. 127.0.0.1:9464)`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}
