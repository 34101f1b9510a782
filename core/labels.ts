/** Label and host-fact hygiene: what an agent may claim about itself, bounded and well-formed. */

export type Labels = Record<string, string>;

const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;
const LABEL_VALUE = /^[A-Za-z0-9._:@/-]{0,63}$/;
export const MAX_LABELS = 64;

/** Label problems, one message per bad entry; empty when all are fine. */
export function labelProblems(labels: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  const keys = Object.keys(labels);
  if (keys.length > MAX_LABELS) out.push(`too many labels (${keys.length}; at most ${MAX_LABELS})`);
  for (const k of keys.slice(0, MAX_LABELS + 1)) {
    if (!LABEL_KEY.test(k)) out.push(`label key "${k.slice(0, 80)}" is invalid: use letters, digits, . _ / - (at most 63 characters)`);
    const v = labels[k] as string;
    if (!LABEL_VALUE.test(v)) out.push(`label ${k}="${v.slice(0, 80)}" has an invalid value: use letters, digits, . _ : @ / - (at most 63 characters)`);
  }
  return out;
}

/** Parses "k=v,k2=v2" (CLI and config). */
export function parseLabelList(text: string): Labels {
  const out: Labels = {};
  for (const part of text.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`label "${p}" must look like key=value`);
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  const problems = labelProblems(out);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return out;
}

export function formatLabels(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(',');
}

export interface HostFacts {
  hostname: string;
  os: string;
  platform: string;
  arch: string;
  cpus: number;
  memoryBytes: number;
  agentVersion: string;
  kernelRelease: string;
}

/** Clamps facts reported by an agent so a hostile one cannot bloat the registry. */
export function boundFacts(f: Partial<HostFacts> | undefined): HostFacts {
  const s = (v: unknown, n = 255): string => (typeof v === 'string' ? v.slice(0, n) : '');
  const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
  return {
    hostname: s(f?.hostname),
    os: s(f?.os, 64),
    platform: s(f?.platform, 64),
    arch: s(f?.arch, 32),
    cpus: num(f?.cpus),
    memoryBytes: num(f?.memoryBytes),
    agentVersion: s(f?.agentVersion, 64),
    kernelRelease: s(f?.kernelRelease, 128),
  };
}
