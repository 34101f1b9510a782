/**
 * A gate lets a test hold a real step open for exactly as long as it needs, instead of giving
 * the step a `sleep N` and hoping N outlasts the test's next moves on a loaded machine. The step
 * waits for a file; the test opens the gate (creates the file) once it has seen what it waits for.
 */
import { writeFile } from 'node:fs/promises';

/** How long a gated step waits at most (a backstop for a test that fails before opening it). */
const GATE_MAX_SECONDS = 90;

/**
 * A POSIX sh snippet that waits until the file named by the shell word `file` (e.g. "$1")
 * exists, then fails if it never appeared within the backstop.
 */
export function gateWaitSh(file: string): string {
  return `i=0; while [ ! -e ${file} ] && [ "$i" -lt ${GATE_MAX_SECONDS * 20} ]; do sleep 0.05; i=$((i+1)); done; test -e ${file} || exit 1`;
}

/** argv for a step that waits for `gate`, with `before` and `after` shell code around the wait. */
export function gatedArgv(gate: string, o: { before?: string; after?: string } = {}): string[] {
  const parts = [o.before, gateWaitSh('"$1"'), o.after].filter((p): p is string => p !== undefined && p !== '');
  return ['/bin/sh', '-c', parts.join('; '), 'gated-step', gate];
}

export async function openGate(gate: string): Promise<void> {
  await writeFile(gate, '');
}
