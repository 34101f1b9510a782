/**
 * Live output delay (issue 8): how long a line printed on a real agent takes to reach the
 * browser's event stream. A real agent process runs a step that prints `T <time>` lines every
 * --every ms (the time it printed, from the machine's clock); two clients follow the same
 * Server-Sent Events stream the execution page follows (GET /api/v1/executions/ID/events):
 *  - a real EventSource in headless Chromium (the portal's session cookie), and
 *  - a Node reader over fetch (the API token),
 * and each line's delay is its arrival time minus its printed time (same machine, same clock).
 * Lines printed before both clients were following are left out (the stream replays those from
 * the store). Prints p50/p95/p99 per round and the medians of --runs rounds.
 *
 *   node dist/bench/live-output-delay.js [--lines 100] [--every 50] [--runs 3] [--no-browser]
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { readSse } from '../cli/sse.js';
import { CLI, out, sleep, startBench, type Bench } from './harness.js';
import { median, percentile } from './proc-stats.js';

const { values: args } = parseArgs({
  options: {
    lines: { type: 'string', default: '100' },
    every: { type: 'string', default: '50' },
    runs: { type: 'string', default: '3' },
    'no-browser': { type: 'boolean', default: false },
  },
});
const LINES = Number(args.lines);
const EVERY = Number(args.every);
const RUNS = Number(args.runs);
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const PASSWORD = 'bench-portal-password';
/** The step waits this long before its first line, so both clients follow from the start. */
const LEAD_MS = 2_000;

/** The step: prints LINES lines `T <epoch ms> <n>`, one every EVERY ms, after LEAD_MS. */
const PRINTER = `const [n, every, lead] = process.argv.slice(1).map(Number); let i = 0;
const tick = () => { process.stdout.write('T ' + (performance.timeOrigin + performance.now()).toFixed(3) + ' ' + i + '\\n'); if (++i < n) setTimeout(tick, every); };
setTimeout(tick, lead);`;

/** Milliseconds since the epoch, sub-millisecond, as the printer computes them. */
const nowMs = (): number => performance.timeOrigin + performance.now();

/** Delays (ms) of the `T` lines in an output event's text, arriving at `at`. */
function delaysIn(text: string, at: number, after: number): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/^T (\d+\.\d+) \d+$/gm)) {
    const printed = Number(m[1]);
    if (printed > after) out.push(at - printed);
  }
  return out;
}

/** Follows the stream with fetch: resolves with [printed, arrived] pairs once `end` arrives; `opened` once the response started. */
async function nodeReader(b: Bench, id: string): Promise<{ opened: number; lines: Array<[string, number]> }> {
  const res = await fetch(`${b.url}/api/v1/executions/${id}/events`, { headers: { authorization: `Bearer ${b.apiToken}`, accept: 'text/event-stream' } });
  const opened = nowMs();
  if (!res.ok || !res.body) throw new Error(`events: ${res.status}`);
  const lines: Array<[string, number]> = [];
  // An event's arrival time is that of the chunk that completed it (readSse parses a chunk's
  // events before it pulls the next one), not the moment the parser reached it.
  let at = 0;
  const body = res.body;
  const timed = (async function* (): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      at = nowMs();
      yield chunk as Uint8Array;
    }
  })();
  for await (const ev of readSse({ body: timed })) {
    if (ev.event === 'end') break;
    if (ev.event === 'output') lines.push([(JSON.parse(ev.data) as { data: string }).data, at]);
  }
  return { opened, lines };
}

/** Opens a real EventSource in the page; the returned promise resolves like nodeReader's. */
async function browserReader(page: Page, id: string): Promise<{ opened: number; lines: Array<[string, number]> }> {
  return page.evaluate(
    (path) =>
      new Promise<{ opened: number; lines: Array<[string, number]> }>((resolve, reject) => {
        const now = (): number => performance.timeOrigin + performance.now();
        const lines: Array<[string, number]> = [];
        let opened = 0;
        const es = new EventSource(path);
        es.addEventListener('open', () => (opened = now()));
        es.addEventListener('output', (ev) => lines.push([(JSON.parse((ev as unknown as { data: string }).data) as { data: string }).data, now()]));
        es.addEventListener('end', () => {
          es.close();
          resolve({ opened, lines });
        });
        es.addEventListener('error', () => {
          if (es.readyState === EventSource.CLOSED) reject(new Error('the event stream closed'));
        });
      }),
    `/api/v1/executions/${id}/events`,
  );
}

function figures(ds: readonly number[]): { p50: number; p95: number; p99: number } {
  return { p50: percentile(ds, 50), p95: percentile(ds, 95), p99: percentile(ds, 99) };
}
const fmt = (f: { p50: number; p95: number; p99: number }): string => `p50 ${f.p50.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms`;

async function main(): Promise<void> {
  out(`# Handrail live output delay — ${availableParallelism()} cores, ${LINES} lines every ${EVERY} ms from a real agent, ${RUNS} rounds; clients: ${args['no-browser'] ? 'Node' : 'Chromium EventSource and Node'}`);
  const runbooks = join(process.env['TMPDIR'] ?? '/tmp', `hr-bench-runbooks-${process.pid}`);
  await mkdir(runbooks, { recursive: true });
  await writeFile(join(runbooks, 'policy.yaml'), stringify({ apiVersion: 'handrail/v1', kind: 'Policy', metadata: { name: 'bench' }, spec: { rules: [{ name: 'admins', effect: 'allow', actions: ['*'], subjects: ['group:admins'] }] } }));
  const b = await startBench({ bootstrapUses: 1, portalPassword: PASSWORD, logLevel: 'warn', coordinatorArgs: ['--runbooks-dir', runbooks] });
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI, 'agent', '--coordinator', b.address, '--token', b.bootstrap, '--ca', join(b.certsDir, 'ca.pem'), '--state-dir', join(b.dir, 'agent'), '--name', 'printer', '--allow-adhoc', '--log-level', 'warn'], { stdio: 'ignore' });
  let browser: Browser | undefined;
  try {
    let agentId: string | undefined;
    for (let i = 0; i < 240 && agentId === undefined; i++) {
      const { agents } = await b.api<{ agents: Array<{ id: string; name: string; status: string }> }>('GET', '/api/v1/agents');
      agentId = agents.find((a) => a.name === 'printer' && a.status === 'online')?.id;
      if (agentId === undefined) await sleep(250);
    }
    if (agentId === undefined) throw new Error('the agent did not come online');
    let page: Page | undefined;
    if (!args['no-browser']) {
      browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
      page = await (await browser.newContext()).newPage();
      await page.goto(`${b.url}/login`);
      await page.fill('#user', 'bench');
      await page.fill('#password', PASSWORD);
      await Promise.all([page.waitForURL(`${b.url}/runbooks`), page.click('button:has-text("Log in")')]);
    }
    const rounds: Array<{ node: ReturnType<typeof figures>; browser?: ReturnType<typeof figures> }> = [];
    for (let r = 0; r < RUNS; r++) {
      const { executionId } = await b.api<{ executionId: string }>('POST', '/api/v1/adhoc', { agents: [agentId], argv: [process.execPath, '-e', PRINTER, String(LINES), String(EVERY), String(LEAD_MS)], timeout: '5m' });
      const [n, w] = await Promise.all([nodeReader(b, executionId), page ? browserReader(page, executionId) : undefined]);
      const after = Math.max(n.opened, w?.opened ?? 0);
      const nd = n.lines.flatMap(([text, at]) => delaysIn(text, at, after));
      const wd = w?.lines.flatMap(([text, at]) => delaysIn(text, at, after));
      const round = { node: figures(nd), ...(wd ? { browser: figures(wd) } : {}) };
      rounds.push(round);
      out(`round ${r + 1}: ${nd.length} lines (${n.lines.length} events)${wd ? `; Chromium ${fmt(round.browser as ReturnType<typeof figures>)}` : ''}; Node ${fmt(round.node)}`);
    }
    const med = (pick: (x: (typeof rounds)[number]) => ReturnType<typeof figures> | undefined): string => {
      const xs = rounds.map(pick).filter((x): x is ReturnType<typeof figures> => x !== undefined);
      return fmt({ p50: median(xs.map((x) => x.p50)), p95: median(xs.map((x) => x.p95)), p99: median(xs.map((x) => x.p99)) });
    };
    if (page) out(`Chromium EventSource, medians of ${RUNS} rounds: ${med((x) => x.browser)}`);
    out(`Node SSE reader, medians of ${RUNS} rounds: ${med((x) => x.node)}`);
  } finally {
    await browser?.close();
    agent.kill('SIGTERM');
    b.coord.kill('SIGTERM');
    await rm(runbooks, { recursive: true, force: true });
  }
}

await main();
