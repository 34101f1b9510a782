/** Reading a process's RSS and CPU time from /proc (Linux). */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Open sockets of a process (listeners and connections), from its /proc fd table. */
export function socketCount(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++;
    } catch {
      // closed while we looked
    }
  }
  return n;
}

/**
 * Where a process's resident memory is (/proc/PID/smaps_rollup): anonymous (heaps: V8's and
 * malloc's) against file-backed (the node binary and libraries), e.g. "anon 900.1 MB, file 50.2 MB".
 */
export function smapsSummary(pid: number): string {
  try {
    const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? 0) * 1024;
    return `anon ${mb(kb('Anonymous'))}, file ${mb(kb('Rss') - kb('Anonymous'))}`;
  } catch {
    return 'smaps_rollup unreadable';
  }
}

/** User + system CPU time in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // CLK_TCK is 100 on Linux
}

/**
 * CPU time in milliseconds of every thread of `pid`, from the scheduler's nanosecond counters
 * (/proc/PID/task/TID/schedstat): fine enough to time one step, where /proc/PID/stat counts
 * 10 ms ticks.
 */
export function preciseCpuMs(pid: number, thread: 'all' | 'main' = 'all'): number {
  let ns = 0;
  for (const tid of thread === 'main' ? [String(pid)] : readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return ns / 1e6;
}

/** NaN for no samples (a figure that was not taken, not a zero). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  if (s.length === 0) return NaN;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** Bytes in MiB (2^20): RSS figures are compared with a target in GiB or 10^9 bytes, so the unit is spelled out. */
export const mb = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;

/**
 * CPU time in milliseconds of the main thread (JavaScript, TLS, HTTP/2 framing) and of all the
 * other threads together (libuv's pool, which runs every SQLite statement, and V8's GC and
 * compiler helpers). Node names every thread "node", so they cannot be told apart further.
 */
export function threadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
      const kind = tid === String(pid) ? 'main' : 'other threads';
      out[kind] = (out[kind] ?? 0) + ms;
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return out;
}

/** Context switches (voluntary + involuntary) of every thread of `pid`: each SQLite statement and each wake of the loop costs some. */
export function contextSwitches(pid: number): number {
  let n = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) n += Number(m[1]);
    } catch {
      // The thread ended between listing and reading.
    }
  }
  return n;
}

/** `a - b` per key, formatted "main 120 ms, other threads 30 ms". */
export function threadCpuDelta(a: Record<string, number>, b: Record<string, number>): string {
  return Object.keys(a)
    .sort()
    .map((k) => `${k} ${((a[k] ?? 0) - (b[k] ?? 0)).toFixed(0)} ms`)
    .join(', ');
}
