/**
 * Host health as Nomad's scheduler sees it. HEALTHY only when this host can
 * really run an isolated task; otherwise the description says exactly what
 * is missing, so an operator can act on `nomad node status -verbose`.
 */
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import * as os from 'node:os';
import { FingerprintResponse_HealthState as Health, type FingerprintResponse } from '../gen/hashicorp/nomad/plugins/drivers/driver';
import type { Attribute } from '../gen/hashicorp/nomad/plugins/shared/structs/structs';
import { detectCgroupLayout, type CgroupLayout } from '../shared/cgroups/detect';
import type { PluginConfig } from './config/config';
import { INIT_HELPER_PATH, loadNative } from '../native/binding';
import { PLUGIN_VERSION } from './version';
import { capabilityName } from '../shared/capabilities';
import { systemErrorCode } from '../native/errno';
import { messageOf } from '../shared/errors';

/** Controllers a task's limits and accounting need, per mode. */
export const REQUIRED_V2_CONTROLLERS = ['cpu', 'memory'];
// The controllers Nomad itself creates task cgroups in on v1 hosts.
export const REQUIRED_V1_CONTROLLERS = ['cpu', 'memory', 'freezer', 'cpuset'];

export interface HostFacts {
  platform: string;
  uid: number;
  kernel: string;
  landlockAbi: number;
  landlockError: string | null;
  nativeError: string | null;
  initHelperError: string | null;
  cgroups: CgroupLayout;
  v2Controllers: string[];
}

export function gatherHostFacts(): HostFacts {
  let landlockAbi = 0;
  let landlockError: string | null = null;
  let nativeError: string | null = null;
  try {
    const r = loadNative().landlockAbi();
    landlockAbi = r.abi;
    landlockError = r.error;
  } catch (err) {
    nativeError = messageOf(err);
  }
  let initHelperError: string | null = null;
  try {
    accessSync(INIT_HELPER_PATH, fsConstants.X_OK);
  } catch (err) {
    initHelperError = `init helper ${INIT_HELPER_PATH} is missing or not executable (${systemErrorCode(err) ?? 'error'})`;
  }
  const cgroups = detectCgroupLayout();
  let v2Controllers: string[] = [];
  if (cgroups.mode === 'v2') {
    try {
      v2Controllers = readFileSync(`${cgroups.root}/cgroup.controllers`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      v2Controllers = [];
    }
  }
  return {
    platform: process.platform,
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    kernel: os.release(),
    landlockAbi,
    landlockError,
    nativeError,
    initHelperError,
    cgroups,
    v2Controllers,
  };
}

const boolAttr = (v: boolean): Attribute => ({ boolVal: v, unit: '' });
const intAttr = (v: number): Attribute => ({ intVal: v, unit: '' });
const strAttr = (v: string): Attribute => ({ stringVal: v, unit: '' });

/**
 * The Landlock scopes every task's domain has: none before ABI 6; from ABI 6
 * signals always, abstract unix sockets unless the operator turned them off.
 */
export function landlockScopes(abi: number, config: Pick<PluginConfig, 'scopeAbstractUnixSockets'>): string[] {
  if (abi < 6) return [];
  return config.scopeAbstractUnixSockets ? ['abstract_unix_socket', 'signal'] : ['signal'];
}

/**
 * FingerprintResponse.err (field 4): the reason whenever the driver is
 * unhealthy here, as well as in the health description. Nomad logs it
 * ("received fingerprint error from driver") and shows the driver as
 * unhealthy with "failed to fingerprint driver" (plugins/drivers client and
 * drivermanager, Nomad 2.x); docs/operators.md says what an operator sees.
 */
export function fingerprintErr(health: Health, description: string): string {
  // UNDETECTED (not Linux, not root) means exec2 does not apply here, not
  // that it failed: Nomad never takes a response with err as the first
  // fingerprint, so an err there would hold up every agent start by the
  // drivermanager's 50 s wait.
  return health === Health.UNHEALTHY ? description : '';
}

/** The answer when the host facts could not even be gathered: still an answer, never a silent stream. */
export function fingerprintFailure(err: unknown, config: PluginConfig): FingerprintResponse {
  const description = `fingerprint failed: ${messageOf(err)}`;
  return {
    attributes: { 'driver.exec2.version': strAttr(PLUGIN_VERSION), 'driver.exec2.unveil.defaults': boolAttr(config.unveilDefaults), 'driver.exec2.unveil.tasks': boolAttr(config.unveilByTask) },
    health: Health.UNHEALTHY,
    healthDescription: description,
    err: description,
  };
}

/** Pure: facts + config → the message Nomad receives. */
export function fingerprintFromFacts(facts: HostFacts, config: PluginConfig): FingerprintResponse {
  const attributes: Record<string, Attribute> = {
    'driver.exec2.unveil.defaults': boolAttr(config.unveilDefaults),
    'driver.exec2.unveil.tasks': boolAttr(config.unveilByTask),
    'driver.exec2.version': strAttr(PLUGIN_VERSION),
    'driver.exec2.landlock.abi': intAttr(facts.landlockAbi),
    'driver.exec2.cgroup.mode': strAttr(facts.cgroups.mode),
    'driver.exec2.allow_caps': strAttr(config.allowCaps.map(capabilityName).join(',')),
    'driver.exec2.landlock.scopes': strAttr(landlockScopes(facts.landlockAbi, config).join(',')),
    'driver.exec2.pids_max': intAttr(config.pidsMax),
    // v1/hybrid: false means a lone launch first waits an RCU grace period to
    // join its cgroups (docs/operators.md "Launch latency on cgroup v1 hosts");
    // a job can constrain on it
    'driver.exec2.cgroup.favordynmods': boolAttr(facts.cgroups.favorDynmods),
  };
  const answer = (health: Health, description: string): FingerprintResponse => ({ attributes, health, healthDescription: description, err: fingerprintErr(health, description) });

  if (facts.platform !== 'linux') return answer(Health.UNDETECTED, `exec2 needs Linux (this is ${facts.platform})`);
  if (facts.uid !== 0) return answer(Health.UNDETECTED, 'Driver must run as root');
  if (facts.nativeError) return answer(Health.UNHEALTHY, `native launcher unavailable: ${facts.nativeError}`);
  if (facts.initHelperError) return answer(Health.UNHEALTHY, facts.initHelperError);
  if (facts.landlockAbi < 1) {
    return answer(Health.UNHEALTHY, `Landlock is not available on kernel ${facts.kernel} (${facts.landlockError ?? 'unknown reason'}); enable it with lsm=...,landlock on the kernel command line (Linux 5.13+)`);
  }
  const cg = facts.cgroups;
  if (cg.mode === 'none') return answer(Health.UNHEALTHY, 'no cgroup filesystem is mounted at /sys/fs/cgroup');
  if (cg.mode === 'v2') {
    const missing = REQUIRED_V2_CONTROLLERS.filter((c) => !facts.v2Controllers.includes(c));
    if (missing.length > 0) return answer(Health.UNHEALTHY, `cgroup v2 controllers not available at ${cg.root}: ${missing.join(', ')}`);
  } else {
    const missing = REQUIRED_V1_CONTROLLERS.filter((c) => !cg.v1.has(c));
    if (missing.length > 0) return answer(Health.UNHEALTHY, `cgroup v1 controllers not mounted: ${missing.join(', ')}`);
  }
  return answer(Health.HEALTHY, 'Healthy');
}

/** How often the stream re-checks the host, like exec2. */
export const FINGERPRINT_PERIOD_MS = 90_000;
