/**
 * Undo steps for everything the race makes (users, sshd and agent processes, temp dirs), run
 * last-in first-out exactly once: at the end, on failure, and on Ctrl-C or SIGTERM.
 */
export class Cleanup {
  private readonly steps: Array<{ what: string; fn: () => Promise<void> | void }> = [];
  private running: Promise<void> | undefined;

  constructor(private readonly log: (line: string) => void) {}

  add(what: string, fn: () => Promise<void> | void): void {
    this.steps.push({ what, fn });
  }

  /** Runs every step, newest first; a failing step is reported and the others still run. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (let s = this.steps.pop(); s; s = this.steps.pop()) {
        try {
          await s.fn();
        } catch (e) {
          this.log(`cleanup: ${s.what} failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    })();
    return this.running;
  }
}
