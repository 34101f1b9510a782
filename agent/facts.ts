/** Host facts the agent reports (hostname, OS, arch, CPUs, memory, version). */
import { arch, cpus, hostname, platform, release, totalmem, type } from 'node:os';
import type { HostFacts } from '../core/labels.js';
import { HANDRAIL_VERSION } from '../core/version.js';

export const AGENT_VERSION = HANDRAIL_VERSION;

export function collectFacts(): HostFacts {
  return {
    hostname: hostname(),
    os: type(),
    platform: platform(),
    arch: arch(),
    cpus: cpus().length,
    memoryBytes: totalmem(),
    agentVersion: AGENT_VERSION,
    kernelRelease: release(),
  };
}
