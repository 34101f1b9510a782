/**
 * The race against the tools ops teams use today (issue 10): on this machine, N loopback hosts
 * served by Debian's OpenSSH sshd (bench/vs-ssh/ssh-hosts.ts) and N real Handrail agent
 * processes (bench/vs-ssh/handrail-fleet.ts), and in the same run, interleaved round by round,
 * `true` on the first N hosts with pdsh -R ssh (plain, and with warm ControlMaster
 * connections), ansible -m raw and -m command (warm ControlPersist, pipelining, forks = N) and
 * `handrail run RUNBOOK --follow`, each timed from spawn to exit as a user runs it. Also the CPU
 * time of every process each run involved (client and hosts), which other work on a shared
 * machine disturbs far less than wall time. Then a few traced Handrail runs at the largest N
 * show where its wall time goes (bench/vs-ssh/profile.ts).
 *
 * Needs root (it creates a user and runs sshd) and Debian (apt-get installs openssh-server,
 * pdsh and ansible-core when missing). Everything it makes (user, processes, temp dirs) is
 * removed at the end, on failure and on Ctrl-C. Not part of the test suite.
 *
 *   npm run build && node dist/bench/vs-ssh.js [--sizes 10,50,100] [--rounds 5] [--profile-runs 3] [--out .bench]
 */
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { HANDRAIL_VERSION } from '../core/version.js';
import { cpuMs, median } from './proc-stats.js';
import { CLI, out } from './harness.js';
import { debVersion, installMissing } from './vs-ssh/apt.js';
import { Cleanup } from './vs-ssh/cleanup.js';
import { selfTimeBySource, type CpuProfile } from './vs-ssh/cpu-profile-summary.js';
import { RUNBOOK_ID, startHandrailFleet } from './vs-ssh/handrail-fleet.js';
import { pidCpuMs, pidsNaming, runCpuMs } from './vs-ssh/proc-tree.js';
import { timeline, timelineLines, type Milestone } from './vs-ssh/profile.js';
import { markdownTable, rows, targetLines, type Sample } from './vs-ssh/report.js';
import { createBenchUser, startSshHosts } from './vs-ssh/ssh-hosts.js';
import { handrailTool, sshTools, type Invocation, type Tool } from './vs-ssh/tools.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10,50,100' },
    rounds: { type: 'string', default: '5' },
    'profile-runs': { type: 'string', default: '3' },
    batch: { type: 'string', default: '10' },
    out: { type: 'string', default: '.bench' },
    tools: { type: 'string', default: 'handrail,pdsh,pdsh-cm,ansible-raw,ansible-command' },
  },
});
const SIZES = String(args.sizes)
  .split(',')
  .map(Number)
  .sort((a, b) => a - b);
const ROUNDS = Number(args.rounds);
const PROFILE_RUNS = Number(args['profile-runs']);
const BATCH = Number(args.batch);
const MAX = Math.max(...SIZES);
const RUN_TIMEOUT_MS = 10 * 60_000;
const now = (): number => performance.timeOrigin + performance.now();
const load = (): string => loadavg().map((x) => x.toFixed(1)).join(' ');

interface Timed {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly spawnedAt: number;
  readonly exitSeenAt: number;
}

/** Runs one invocation from spawn to exit; output goes to files (a ControlPersist master may hold a pipe open long after). */
async function timeRun(inv: Invocation, runDir: string, marker: string, extraEnv: Record<string, string> = {}): Promise<Timed> {
  const outFile = join(runDir, 'stdout');
  const errFile = join(runDir, 'stderr');
  const fo = openSync(outFile, 'w');
  const fe = openSync(errFile, 'w');
  const cpu0 = runCpuMs(marker);
  const spawnedAt = now();
  const p = spawn(inv.cmd, inv.args, { stdio: ['ignore', fo, fe], env: { ...process.env, ...inv.env, ...extraEnv } });
  const timer = setTimeout(() => p.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const code = await new Promise<number | null>((res) => p.once('exit', (c) => res(c)));
  const exitSeenAt = now();
  clearTimeout(timer);
  const cpu = runCpuMs(marker) - cpu0;
  closeSync(fo);
  closeSync(fe);
  return { wallMs: exitSeenAt - spawnedAt, cpuMs: cpu, code, stdout: readFileSync(outFile, 'utf8'), stderr: readFileSync(errFile, 'utf8'), spawnedAt, exitSeenAt };
}

function gitCommit(): string {
  const r = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: resolve(CLI, '..', '..', '..') });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: resolve(CLI, '..', '..', '..') }).stdout?.trim();
  return r.status === 0 ? `${r.stdout.trim()}${dirty ? '+dirty' : ''}` : '?';
}

async function main(cleanup: Cleanup): Promise<void> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) throw new Error('run it as root on Linux (sudo node dist/bench/vs-ssh.js): it creates a user and runs sshd on 127.0.0.x');
  const startedAt = new Date();
  const machine = { cores: availableParallelism(), cpu: cpus()[0]?.model ?? '?', memGiB: Math.round(totalmem() / 2 ** 30), kernel: release(), os: /PRETTY_NAME="([^"]*)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '?' };
  out(`# Handrail vs SSH tools — ${startedAt.toISOString()}, ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, ${machine.os}, Node ${process.version}`);
  const loadAtStart = loadavg();
  out(`# load average at start: ${load()}`);
  const install = installMissing();
  out(install.installed.length ? `installed with apt-get: ${install.installed.join(' ')} in ${install.seconds.toFixed(1)} s` : 'openssh-server, pdsh and ansible-core already installed (no apt-get needed)');
  const versions = {
    handrail: `${HANDRAIL_VERSION} (${gitCommit()})`,
    node: process.version,
    'openssh-server': debVersion('openssh-server'),
    pdsh: debVersion('pdsh'),
    'ansible-core': debVersion('ansible-core'),
  };
  out(`versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);

  const dir = await mkdtemp(join(tmpdir(), 'hr-vs-ssh-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  // The hosts' user must reach its home inside.
  await chmod(dir, 0o755);
  const user = await createBenchUser(dir, cleanup);
  let t = now();
  const hosts = await startSshHosts({ dir, count: MAX, user, cleanup });
  out(`${MAX} sshd on ${hosts.addresses[0]}…${hosts.addresses.at(-1)}:${hosts.port} (user ${user.name}, Ed25519 key auth only, UsePAM no, StrictModes yes) up in ${((now() - t) / 1000).toFixed(1)} s`);
  cleanup.add('stop what is left of the run (ControlPersist masters)', async () => {
    const left = pidsNaming(dir);
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Gone.
      }
    }
    await new Promise((r) => setTimeout(r, left.length ? 300 : 0));
  });
  const ssh = await sshTools({ dir, hosts, sizes: SIZES });
  t = now();
  const fleet = await startHandrailFleet({ dir, user, sizes: SIZES, batch: BATCH, cleanup, log: out });
  out(`coordinator up in ${((now() - t) / 1000).toFixed(1)} s (pid ${fleet.bench.coord.pid}, its own data dir ${fleet.bench.dataDir})`);
  const handrail = handrailTool({ cli: CLI, runbook: RUNBOOK_ID, server: fleet.bench.url, token: fleet.bench.apiToken });
  const wanted = String(args.tools).split(',');
  const tools: Tool[] = [handrail, ...ssh].filter((x) => wanted.includes(x.id));
  if (!tools.some((x) => x.id === 'handrail')) throw new Error('--tools must include handrail (the ratios are against it)');
  const runDir = join(dir, 'runs');
  await mkdir(runDir);

  const samples: Array<Sample & { round: number; load1: number }> = [];
  const run = async (tool: Tool, n: number, what: string): Promise<Timed> => {
    const r = await timeRun(tool.invocation(n), runDir, dir);
    const problem = tool.check(n, r.code, r.stdout, r.stderr);
    if (problem) throw new Error(`${tool.label} on ${n} hosts (${what}) failed: ${problem}`);
    return r;
  };
  const enroll: Record<number, number> = {};
  let profile:
    | { runs: Milestone[][]; lines: string[]; cpu: Record<string, number>; baselines: Record<string, number>; cliProfile: { spanMs: number; rows: Array<{ source: string; ms: number }> } | undefined }
    | undefined;
  for (const n of SIZES) {
    const g = await fleet.grow(n);
    enroll[n] = g.seconds;
    out(`\n## N = ${n}: ${g.started} more agent processes enrolled and online in ${g.seconds.toFixed(1)} s (batches of ${BATCH}); load ${load()}`);
    for (const tool of tools) {
      const w = await run(tool, n, 'warm-up');
      out(`warm-up ${tool.label}: ${w.wallMs.toFixed(0)} ms`);
    }
    for (let r = 0; r < ROUNDS; r++) {
      // A different tool first each round, so no tool always runs right after the same one.
      const order = tools.map((_, i) => tools[(i + r) % tools.length] as Tool);
      const load1 = loadavg()[0] ?? 0;
      const line: string[] = [];
      for (const tool of order) {
        const s = await run(tool, n, `round ${r + 1}`);
        samples.push({ tool: tool.id, n, wallMs: s.wallMs, cpuMs: s.cpuMs, round: r + 1, load1 });
        line.push(`${tool.id} ${s.wallMs.toFixed(0)} ms (CPU ${s.cpuMs.toFixed(0)} ms)`);
      }
      out(`round ${r + 1}/${ROUNDS} (load ${load1.toFixed(1)}): ${line.join(', ')}`);
    }
    if (n === MAX && PROFILE_RUNS > 0) profile = await profileHandrail(n);
  }

  async function profileHandrail(n: number): Promise<NonNullable<typeof profile>> {
    out(`\n## Where \`handrail run --follow\` spends its time at N = ${n} (${PROFILE_RUNS} traced runs, medians)`);
    const trace = pathToFileURL(join(import.meta.dirname, 'vs-ssh', 'cli-trace.js')).href;
    const traced = handrailTool({ cli: CLI, runbook: RUNBOOK_ID, server: fleet.bench.url, token: fleet.bench.apiToken, nodeArgs: ['--import', trace] });
    const runs: Milestone[][] = [];
    const cpu = { coordinator: [] as number[], agents: [] as number[], cli: [] as number[] };
    for (let i = 0; i < PROFILE_RUNS; i++) {
      const traceFile = join(runDir, `trace-${i}.jsonl`);
      const coord0 = cpuMs(fleet.bench.coord.pid as number);
      const agents0 = fleet.agents.reduce((a, p) => a + pidCpuMs(p.pid as number), 0);
      const cli0 = pidCpuMs(process.pid, 'reaped');
      const r = await timeRun(traced.invocation(n), runDir, dir, { HR_VS_SSH_TRACE: traceFile });
      const problem = traced.check(n, r.code, r.stdout, r.stderr);
      if (problem) throw new Error(`traced handrail run failed: ${problem}`);
      cpu.coordinator.push(cpuMs(fleet.bench.coord.pid as number) - coord0);
      cpu.agents.push(fleet.agents.reduce((a, p) => a + pidCpuMs(p.pid as number), 0) - agents0);
      cpu.cli.push(pidCpuMs(process.pid, 'reaped') - cli0);
      const executionId = /execution (\S+)/.exec(r.stderr)?.[1];
      if (!executionId) throw new Error(`no execution id in: ${r.stderr.slice(0, 200)}`);
      runs.push(await timeline(join(fleet.bench.dataDir, 'handrail.db'), { spawnedAt: r.spawnedAt, exitSeenAt: r.exitSeenAt, traceFile, executionId }));
    }
    const lines = timelineLines(runs);
    for (const l of lines) out(l);
    // What the same processes burn doing nothing for as long (heartbeats, timers), to set against the above.
    const idleMs = median(runs.map((r) => r.at(-1)?.at ?? 0));
    const coordIdle0 = cpuMs(fleet.bench.coord.pid as number);
    const agentsIdle0 = fleet.agents.reduce((a, p) => a + pidCpuMs(p.pid as number), 0);
    await new Promise((r) => setTimeout(r, idleMs));
    const idle = { coordinator: cpuMs(fleet.bench.coord.pid as number) - coordIdle0, agents: fleet.agents.reduce((a, p) => a + pidCpuMs(p.pid as number), 0) - agentsIdle0 };
    const cpuMed = { coordinator: median(cpu.coordinator), agents: median(cpu.agents), cli: median(cpu.cli), coordinatorIdle: idle.coordinator, agentsIdle: idle.agents };
    out(
      `CPU per run (median): coordinator ${cpuMed.coordinator.toFixed(0)} ms, ${n} agents together ${cpuMed.agents.toFixed(0)} ms (incl. the \`true\` processes), CLI ${cpuMed.cli.toFixed(0)} ms; ` +
        `the same ${idleMs.toFixed(0)} ms idle: coordinator ${idle.coordinator.toFixed(0)} ms, agents ${idle.agents.toFixed(0)} ms`,
    );
    // The floor under any Node CLI: Node's own start, and the CLI's start with no request.
    const baseline = async (a: string[]): Promise<number> => {
      const xs: number[] = [];
      for (let i = 0; i < 5; i++) xs.push((await timeRun({ cmd: process.execPath, args: a, env: {} }, runDir, dir)).wallMs);
      return median(xs);
    };
    const baselines = { 'node -e 0': await baseline(['-e', '0']), 'handrail --version': await baseline([CLI, '--version']) };
    out(`start-up floors (median of 5): ${Object.entries(baselines).map(([k, v]) => `\`${k}\` ${v.toFixed(0)} ms`).join(', ')}`);
    // One more run under V8's sampling profiler: where the CLI's own time goes, by source.
    const profDir = join(runDir, 'cpu-prof');
    const profiled = handrailTool({ cli: CLI, runbook: RUNBOOK_ID, server: fleet.bench.url, token: fleet.bench.apiToken, nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
    const pr = await timeRun(profiled.invocation(n), runDir, dir);
    const problem = profiled.check(n, pr.code, pr.stdout, pr.stderr);
    if (problem) throw new Error(`profiled handrail run failed: ${problem}`);
    const profFile = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
    const cliProfile = profFile ? selfTimeBySource(JSON.parse(readFileSync(join(profDir, profFile), 'utf8')) as CpuProfile) : undefined;
    if (cliProfile) {
      out(`CLI under --cpu-prof: ${pr.wallMs.toFixed(0)} ms wall, profile span ${cliProfile.spanMs.toFixed(0)} ms; self time by source (idle = waiting for the network):`);
      for (const r of cliProfile.rows.slice(0, 12)) out(`  ${r.ms.toFixed(1).padStart(7)} ms  ${r.source}`);
    }
    return { runs, lines, cpu: cpuMed, baselines, cliProfile: cliProfile ? { spanMs: cliProfile.spanMs, rows: cliProfile.rows.slice(0, 25) } : undefined };
  }

  const table = rows(samples, tools);
  const md = markdownTable(table);
  const targets = targetLines(table);
  out(`\n## Results (${ROUNDS} rounds per tool and N, interleaved; wall = spawn to exit; CPU = every process the run involved, client and hosts)`);
  out(md);
  for (const l of targets) out(l);
  const finishedAt = new Date();
  out(`load average at the end: ${load()}; run took ${((finishedAt.getTime() - startedAt.getTime()) / 60_000).toFixed(1)} min`);

  const stamp = startedAt.toISOString().replace(/[-:]/g, '').slice(0, 13);
  const outDir = resolve(String(args.out));
  await mkdir(outDir, { recursive: true });
  const settings = {
    sizes: SIZES,
    rounds: ROUNDS,
    notes: [
      'pdsh: -R ssh -f N (fan-out = N), a new SSH connection per host per run; also with ControlMaster/ControlPersist connections warmed by one untimed run',
      'ansible: ad-hoc, -f N, pipelining on, ControlPersist warmed by one untimed run, interpreter pinned (no discovery)',
      `handrail: \`handrail run ${RUNBOOK_ID} --targets inN=yes --follow\` (one step, argv ["true"], parallel, concurrency 100%) against a coordinator with ${MAX} real agent processes (--lite-mode) connected; every result signed, verified, stored and audited`,
      'hosts: one sshd per 127.0.0.x address, and the agents, run as the same unprivileged user made for the run',
      'every tool ran once untimed at each N before the timed rounds',
    ],
  };
  const json = { startedAt: startedAt.toISOString(), finishedAt: finishedAt.toISOString(), machine, loadAverage: { start: loadAtStart, end: loadavg() }, versions, install, settings, enrollSeconds: enroll, rows: table, targets, profile, samples };
  await writeFile(join(outDir, `vs-ssh-${stamp}.json`), JSON.stringify(json, null, 2) + '\n');
  const mdDoc = [
    `# Handrail vs SSH tools — ${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memGiB} GiB, ${machine.os}, Linux ${machine.kernel}. ` +
      `Load average (1 min) at the start of each round: median ${median(samples.map((x) => x.load1)).toFixed(1)} (${Math.min(...samples.map((x) => x.load1)).toFixed(1)}–${Math.max(...samples.map((x) => x.load1)).toFixed(1)}).`,
    `Versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join('; ')}.`,
    '',
    md,
    '',
    ...targets.map((l) => `- ${l}`),
    '',
    ...settings.notes.map((l) => `- ${l}`),
    ...(profile
      ? [
          '',
          `Where \`handrail run --follow\` spends its time at N = ${MAX} (median of ${PROFILE_RUNS} traced runs, ms after spawn):`,
          '',
          '```',
          ...profile.lines,
          '```',
          '',
          `CPU per run (median): coordinator ${profile.cpu['coordinator']?.toFixed(0)} ms, ${MAX} agents ${profile.cpu['agents']?.toFixed(0)} ms, CLI ${profile.cpu['cli']?.toFixed(0)} ms (idle for as long: coordinator ${profile.cpu['coordinatorIdle']?.toFixed(0)} ms, agents ${profile.cpu['agentsIdle']?.toFixed(0)} ms). Start-up floors: ${Object.entries(profile.baselines).map(([k, v]) => `\`${k}\` ${v.toFixed(0)} ms`).join(', ')}.`,
          ...(profile.cliProfile ? ['', 'CLI self time by source (one run under `--cpu-prof`):', '', ...profile.cliProfile.rows.slice(0, 12).map((r) => `- ${r.source}: ${r.ms.toFixed(0)} ms`)] : []),
        ]
      : []),
    '',
  ].join('\n');
  await writeFile(join(outDir, `vs-ssh-${stamp}.md`), mdDoc);
  out(`\nwritten: ${join(outDir, `vs-ssh-${stamp}.json`)} and .md`);
}

const cleanup = new Cleanup((l) => process.stderr.write(l + '\n'));
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`\n${sig}: cleaning up (processes, user, temp dirs)…\n`);
    cleanup.run().then(
      () => process.exit(130),
      () => process.exit(130),
    );
  });
}
let exitCode = 0;
try {
  await main(cleanup);
} catch (e) {
  process.stderr.write(`vs-ssh failed: ${e instanceof Error ? e.message : String(e)}\n`);
  exitCode = 1;
}
await cleanup.run();
process.exit(exitCode);
