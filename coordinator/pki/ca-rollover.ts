/**
 * A CA roll-over, in the certs dir, one step per command (README, "CA roll-over"):
 *
 *   plan    (`ca rotate`)  ca-next.pem/key beside ca.pem; ca-bundle.json names both, with a new
 *                          version. The coordinator trusts agent certificates of both and sends
 *                          the bundle (signed by both CA keys) to every agent.
 *   switch  (`ca switch`)  ca.pem/key → ca-previous.pem/key, ca-next → ca.pem/key, a new
 *                          server certificate from it. Agents are renewed (and new ones enrolled)
 *                          by the new CA; the bundle is unchanged.
 *   retire  (`ca retire`)  ca-previous.pem kept as ca-retired-*.pem (records name it), its key
 *                          deleted; ca-bundle.json names the new CA alone, with a new version.
 *
 * Each step writes ca-bundle.json last. Until the files fit together again, loadCa refuses
 * them and a running coordinator keeps what it loaded before (ca.ts).
 */
import { X509Certificate } from 'node:crypto';
import { readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import forge from 'node-forge';
import { caFingerprint } from '../../core/ca-bundle.js';
import { failedPrecondition } from '../../core/errors.js';
import { atomicWriteFile } from './atomic-file.js';
import {
  CA_BUNDLE_FILE,
  CA_FILES,
  CA_NEXT_FILES,
  CA_PREVIOUS_FILES,
  caSummary,
  exists,
  issueServerCertificate,
  makeCaCertificate,
  parseBundleFile,
  type CaBundleFile,
  type CaSummary,
} from './ca.js';

export type CaPhase = 'none' | 'planned' | 'switched';

export interface CaRollover {
  readonly phase: CaPhase;
  readonly current: CaSummary;
  readonly next: CaSummary | null;
  readonly previous: CaSummary | null;
  /** ca-bundle.json, if any roll-over ever happened. */
  readonly bundle: CaBundleFile | null;
}

const pathIn = (dir: string, f: string): string => join(dir, f);
const readOptional = (p: string): Promise<string | undefined> => readFile(p, 'utf8').catch(() => undefined);

export async function readRollover(certsDir: string): Promise<CaRollover> {
  const current = await readFile(pathIn(certsDir, CA_FILES.caCert), 'utf8').catch(() => {
    throw failedPrecondition(`no CA in ${certsDir} (${pathIn(certsDir, CA_FILES.caCert)} is missing)`, 'pass --certs-dir, or run `handrail ca init`');
  });
  const next = await readOptional(pathIn(certsDir, CA_NEXT_FILES.caCert));
  const previous = await readOptional(pathIn(certsDir, CA_PREVIOUS_FILES.caCert));
  const bundleText = await readOptional(pathIn(certsDir, CA_BUNDLE_FILE));
  return {
    phase: next ? 'planned' : previous ? 'switched' : 'none',
    current: caSummary(current),
    next: next ? caSummary(next) : null,
    previous: previous ? caSummary(previous) : null,
    bundle: bundleText === undefined ? null : parseBundleFile(bundleText, pathIn(certsDir, CA_BUNDLE_FILE)),
  };
}

/** A bundle version later than the last one, whatever the clock did. */
async function nextBundleVersion(certsDir: string, now: number): Promise<number> {
  const text = await readOptional(pathIn(certsDir, CA_BUNDLE_FILE));
  const last = text === undefined ? 0 : parseBundleFile(text, pathIn(certsDir, CA_BUNDLE_FILE)).version;
  return Math.max(now, last + 1);
}

async function writeBundleFile(certsDir: string, version: number, pems: readonly string[]): Promise<CaBundleFile> {
  const file: CaBundleFile = { version, fingerprints: pems.map(caFingerprint) };
  await atomicWriteFile(pathIn(certsDir, CA_BUNDLE_FILE), JSON.stringify(file, null, 2) + '\n', 0o644);
  return file;
}

/**
 * Starts a roll-over: a new CA (its own key, a distinct name) as ca-next.pem / ca-next.key, and
 * a bundle version naming both CAs. Run again on a planned roll-over whose bundle file is
 * missing (planned by an older release), it only publishes the bundle.
 */
export async function planCaRotation(certsDir: string, now: number, days = 3650): Promise<{ current: CaSummary; next: CaSummary; bundle: CaBundleFile; created: boolean }> {
  const state = await readRollover(certsDir);
  const currentPem = await readFile(pathIn(certsDir, CA_FILES.caCert), 'utf8');
  if (state.phase === 'switched') throw failedPrecondition(`the last roll-over is not finished: ${pathIn(certsDir, CA_PREVIOUS_FILES.caCert)} is still trusted`, 'retire it first with `handrail ca retire`');
  if (state.phase === 'planned') {
    const nextPem = await readFile(pathIn(certsDir, CA_NEXT_FILES.caCert), 'utf8');
    const names = [caFingerprint(currentPem), caFingerprint(nextPem)];
    if (state.bundle && names.every((f) => state.bundle?.fingerprints.includes(f))) {
      throw failedPrecondition(`a CA roll-over is already planned (${pathIn(certsDir, CA_NEXT_FILES.caCert)} exists)`, 'see `handrail ca status`; the next step is `handrail ca switch`');
    }
    const bundle = await writeBundleFile(certsDir, await nextBundleVersion(certsDir, now), [currentPem, nextPem]);
    return { current: caSummary(currentPem), next: caSummary(nextPem), bundle, created: false };
  }
  const org = new X509Certificate(currentPem).subject.match(/^O=(.*)$/m)?.[1] ?? 'Handrail';
  const { caKeys, caCertPem } = makeCaCertificate(org, now, days, ` ${new Date(now).toISOString().slice(0, 10)}`);
  await atomicWriteFile(pathIn(certsDir, CA_NEXT_FILES.caKey), caKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600);
  await atomicWriteFile(pathIn(certsDir, CA_NEXT_FILES.caCert), caCertPem, 0o644);
  const bundle = await writeBundleFile(certsDir, await nextBundleVersion(certsDir, now), [currentPem, caCertPem]);
  return { current: caSummary(currentPem), next: caSummary(caCertPem), bundle, created: true };
}

/**
 * Makes the next CA the issuing one: the current CA becomes ca-previous (still trusted), a new
 * server certificate with the same names comes from the next CA. Resumes a switch a crash cut short.
 */
export async function switchCa(certsDir: string, now: number): Promise<{ current: CaSummary; previous: CaSummary; sans: string[] }> {
  const p = (f: string): string => pathIn(certsDir, f);
  const nextPem = await readOptional(p(CA_NEXT_FILES.caCert));
  if (nextPem === undefined) throw failedPrecondition('no CA roll-over is planned (no ca-next.pem)', 'start one with `handrail ca rotate`');
  const nextKey = await readFile(p(CA_NEXT_FILES.caKey), 'utf8');
  const currentPem = await readFile(p(CA_FILES.caCert), 'utf8');
  const resumed = caFingerprint(currentPem) === caFingerprint(nextPem);
  if (!resumed) {
    if (await exists(p(CA_PREVIOUS_FILES.caCert))) throw failedPrecondition(`${p(CA_PREVIOUS_FILES.caCert)} exists: the last roll-over is not finished`, 'retire it first with `handrail ca retire`');
    // The old CA is kept (still trusted) before anything names the next one as issuing.
    await atomicWriteFile(p(CA_PREVIOUS_FILES.caKey), await readFile(p(CA_FILES.caKey), 'utf8'), 0o600);
    await atomicWriteFile(p(CA_PREVIOUS_FILES.caCert), currentPem, 0o644);
    await atomicWriteFile(p(CA_FILES.caKey), nextKey, 0o600);
    await atomicWriteFile(p(CA_FILES.caCert), nextPem, 0o644);
  }
  const oldServer = new X509Certificate(await readFile(p(CA_FILES.serverCert), 'utf8'));
  const sans = (oldServer.subjectAltName ?? '').split(', ').map((s) => s.replace(/^(DNS:|IP Address:)/, '')).filter((s) => s.length > 0);
  const days = Math.max(1, Math.round((Date.parse(oldServer.validTo) - Date.parse(oldServer.validFrom)) / 86_400_000));
  const org = new X509Certificate(nextPem).subject.match(/^O=(.*)$/m)?.[1] ?? 'Handrail';
  const { createPrivateKey } = await import('node:crypto');
  const server = issueServerCertificate({ caCert: forge.pki.certificateFromPem(nextPem), caKey: createPrivateKey(nextKey) }, sans, now, days, org);
  await atomicWriteFile(p(CA_FILES.serverKey), server.keyPem, 0o600);
  await atomicWriteFile(p(CA_FILES.serverCert), server.certPem + nextPem, 0o644);
  await rm(p(CA_NEXT_FILES.caCert), { force: true });
  await rm(p(CA_NEXT_FILES.caKey), { force: true });
  const previousPem = await readFile(p(CA_PREVIOUS_FILES.caCert), 'utf8');
  return { current: caSummary(nextPem), previous: caSummary(previousPem), sans };
}

/**
 * Stops trusting the previous CA: its certificate stays as ca-retired-<date>-<fingerprint>.pem
 * (audit exports name the CAs agents' certificates came from), its key is deleted, and the
 * bundle agents are sent names the current CA alone.
 */
export async function retireCa(certsDir: string, now: number): Promise<{ retired: CaSummary; keptAs: string; bundle: CaBundleFile }> {
  const p = (f: string): string => pathIn(certsDir, f);
  const previousPem = await readOptional(p(CA_PREVIOUS_FILES.caCert));
  if (previousPem === undefined) throw failedPrecondition('there is no previous CA to retire', (await exists(p(CA_NEXT_FILES.caCert))) ? 'switch to the next CA first with `handrail ca switch`' : 'see `handrail ca status`');
  const keptAs = `ca-retired-${new Date(now).toISOString().slice(0, 10).replace(/-/g, '')}-${caFingerprint(previousPem).slice(0, 16)}.pem`;
  await atomicWriteFile(p(keptAs), previousPem, 0o644);
  await rm(p(CA_PREVIOUS_FILES.caKey), { force: true });
  await rm(p(CA_PREVIOUS_FILES.caCert), { force: true });
  const bundle = await writeBundleFile(certsDir, await nextBundleVersion(certsDir, now), [await readFile(p(CA_FILES.caCert), 'utf8')]);
  return { retired: caSummary(previousPem), keptAs, bundle };
}

/** A retired CA's certificate as `ca retire` keeps it: ca-retired-<yyyymmdd>-<fingerprint>.pem. */
export const RETIRED_CA_FILE = /^ca-retired-[0-9a-z-]+\.pem$/;

/** Every CA certificate this certs dir ever trusted: current, next, previous and retired ones. */
export async function allCaPems(certsDir: string): Promise<string[]> {
  const names = await readdir(certsDir).catch(() => [] as string[]);
  const files = [CA_FILES.caCert, CA_NEXT_FILES.caCert, CA_PREVIOUS_FILES.caCert, ...names.filter((n) => RETIRED_CA_FILE.test(n)).sort()];
  const out: string[] = [];
  for (const f of files) {
    const pem = await readOptional(pathIn(certsDir, f));
    if (pem !== undefined) out.push(pem);
  }
  return out;
}
