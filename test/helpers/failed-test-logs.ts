/**
 * Setup file of the integration tests: when a test fails, the tail of every process its file
 * started (coordinators, agents, CLI servers) is printed with the failure. A timeout says that
 * something did not happen; the processes' structured logs say what they did instead.
 */
import { beforeEach } from 'vitest';
import { startedProcs } from './processes.js';

const TAIL_LINES = 60;

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    for (const p of startedProcs) {
      const lines = p.stderrText.trimEnd().split('\n');
      const state = p.child.exitCode !== null || p.child.signalCode !== null ? `exited ${p.child.exitCode ?? p.child.signalCode}` : 'running';
      console.error(`--- ${p.label} (pid ${p.pid}, ${state}): last ${Math.min(TAIL_LINES, lines.length)} of ${lines.length} stderr lines\n${lines.slice(-TAIL_LINES).join('\n')}`);
    }
  });
});
