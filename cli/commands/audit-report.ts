/**
 * The text `handrail audit verify` prints: the verdict, what was trusted and why (an unpinned key
 * or CA is said to be so, with the flag that pins it), and every checkpoint that could not be
 * checked against the records asked for. Pure: a report in, lines out.
 */
import { formatRange, type TrustedCa, type TrustedKey, type VerifyReport } from '../../coordinator/audit/verify.js';

/** Unchecked checkpoints listed one by one up to this many (--json lists them all). */
const LIST_UNCHECKED = 5;

function keyLine(k: TrustedKey): string {
  switch (k.how) {
    case 'pinned':
      return `trusted audit key ${k.kid} (pinned)`;
    case 'first-use':
      return `trusted audit key ${k.kid} (unpinned, trusted on first use${k.seq !== null ? ` at record ${k.seq}` : ''}: pass --trust-key ${k.kid} to pin)`;
    case 'rotation':
      return `trusted audit key ${k.kid} (introduced at record ${k.seq ?? '?'} by a key.rotated record signed with ${k.by ?? '?'})`;
  }
}

function caLine(c: TrustedCa): string {
  switch (c.how) {
    case 'pinned':
      return `trusted CA ${c.fingerprint256} (pinned)`;
    case 'first-use':
      return `trusted CA ${c.fingerprint256} (unpinned: pass --trust-ca-fingerprint ${c.fingerprint256} to pin)`;
    case 'rotation':
      return `trusted CA ${c.fingerprint256} (introduced at record ${c.seq ?? '?'} by a ${c.event ?? '?'} record beside trusted CA ${c.by ?? '?'})`;
  }
}

export function trustLines(r: VerifyReport): string[] {
  const lines = r.trust.keys.map(keyLine);
  if (r.trust.keys.length === 0) lines.push('trusted audit key: none (no record was checked)');
  for (const c of r.trust.cas) lines.push(caLine(c));
  const fp = r.trust.ca.fingerprint256;
  // No agent result needed a CA (and none was pinned): say which CA the bundle names.
  if (r.trust.cas.length === 0 && fp !== null) lines.push(`trusted CA ${fp} (unpinned: pass --trust-ca-fingerprint ${fp} to pin)`);
  return lines;
}

function scopeText(r: VerifyReport): string {
  const e = r.expected;
  if (e.kind === 'range') return `, the range ${formatRange(e.from, e.to)} asked for`;
  if (e.kind === 'execution') return `, the records of execution ${e.executionId}`;
  return '';
}

export function reportLines(r: VerifyReport, seconds: number, opts: { readonly externalCheckpoints: boolean }): string[] {
  const lines: string[] = [];
  if (r.ok) {
    lines.push(
      `OK: ${r.records} records (seq ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}${scopeText(r)}), ${r.stepResults} agent-signed results with their output, ${r.checkpoints} checkpoint(s), keys ${r.keysUsed.join(', ') || '-'} (${seconds.toFixed(1)} s)`,
    );
  } else {
    lines.push(`FAILED at ${r.firstBad?.seq === null || r.firstBad?.seq === undefined ? 'the log as a whole' : `record ${r.firstBad.seq}`}: ${r.firstBad?.reason ?? '?'}`);
    if (r.hint) lines.push(`hint: ${r.hint}`);
  }
  lines.push(...trustLines(r));
  for (const u of r.unchecked.slice(0, LIST_UNCHECKED)) {
    lines.push(`WARNING: ${u.external ? 'a checkpoint from --checkpoints' : "a bundle's checkpoint"} (signed at ${u.ts}) covers record ${u.seq}, ${u.reason}: not checked`);
  }
  if (r.unchecked.length > LIST_UNCHECKED) lines.push(`WARNING: … and ${r.unchecked.length - LIST_UNCHECKED} more checkpoints not checked (--json lists them all)`);
  const toHead = r.expected.kind === 'full' || (r.expected.kind === 'range' && r.expected.to === null);
  if (r.ok && toHead && !opts.externalCheckpoints) lines.push('note: without --checkpoints (lines kept outside the coordinator), a log cut short at its end still verifies');
  return lines;
}
