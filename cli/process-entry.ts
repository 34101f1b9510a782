/** Runs a command-line entry point as this process: real streams, environment and clock; its result is the exit code. */
import type { CliIo } from './io.js';

export function runAsProcess(entry: (argv: readonly string[], io: CliIo) => Promise<number>): void {
  // `handrail agents ls | head -1`: the reader went away; that is not an error worth a stack trace.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      process.exitCode = 1;
    });
  }
  const io: CliIo = {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    env: process.env,
    now: Date.now,
    ...(process.stdin.isTTY ? {} : { readStdin: () => readAll(process.stdin) }),
  };
  entry(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
      // Long-running commands return after shutdown; short ones must not wait on stray handles.
      setTimeout(() => process.exit(code), 200).unref();
    },
    (e: unknown) => {
      process.stderr.write(`handrail: ${String(e)}\n`);
      process.exit(1);
    },
  );
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}
