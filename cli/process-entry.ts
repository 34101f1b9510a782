/** Runs a command-line entry point as this process: real streams, environment and clock; its result is the exit code. */
import type { CliIo } from './io.js';
import { processClock, TEST_CLOCK_FILE_ENV } from './test-clock.js';

export function runAsProcess(entry: (argv: readonly string[], io: CliIo) => Promise<number>): void {
  // `handrail agents ls | head -1`: the reader went away; that is not an error worth a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      process.exitCode = 1;
    });
  }
  let now: () => number;
  try {
    now = processClock(process.env[TEST_CLOCK_FILE_ENV]);
  } catch (e) {
    process.stderr.write(`handrail: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const io: CliIo = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    now,
    ...(process.stdin.isTTY ? {} : { readStdin: () => readAll(process.stdin) }),
  };
  entry(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
      // The command is done (long-running ones return after their shutdown): exit once what it
      // wrote is handed to the OS, without waiting on stray handles (a keep-alive socket of
      // fetch's pool, the rest of an event stream) — a user timing `handrail run` sees this.
      const exit = (): never => process.exit(code);
      flushed(process.stdout)
        .then(() => flushed(process.stderr))
        .then(exit, exit);
    },
    (e: unknown) => {
      process.stderr.write(`handrail: ${String(e)}\n`);
      process.exit(1);
    },
  );
}

/** Resolves once everything written to the stream so far has been handed to the OS (or it failed). */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) resolve();
    else stream.write('', () => resolve());
  });
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
