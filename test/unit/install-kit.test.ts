import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { installLine, makeInstallKit, sha256Hex, shellQuote } from '../../coordinator/install/install-kit.js';

const input = { serverUrl: 'https://coord.example:8443/', coordinator: 'coord.example:7443', caSha256: 'a'.repeat(64), token: `hrt_${'B'.repeat(43)}` };

describe('the install line and kit', () => {
  it.each([
    ['plain', "'plain'"],
    ["it's", "'it'\\''s'"],
    ['$(rm -rf /) `x` "y"', "'$(rm -rf /) `x` \"y\"'"],
    ['', "''"],
  ])('quotes %j as one shell word', (raw, quoted) => {
    expect(shellQuote(raw)).toBe(quoted);
    // The shell reads it back as exactly the original text.
    expect(execFileSync('sh', ['-c', `printf %s ${quoted}`]).toString()).toBe(raw);
  });

  it('pins the CA by fingerprint, then fetches with it; the token goes only to printf', () => {
    const line = installLine(input);
    expect(line).not.toContain('\n');
    expect(line).toContain("curl -fsSk -o \"$d/ca.pem\" 'https://coord.example:8443/install/ca.pem'");
    expect(line).toContain(`echo '${'a'.repeat(64)}''  '"$d/ca.pem" | sha256sum -c --status -`);
    expect(line).toContain("curl -fsS --cacert \"$d/ca.pem\" -o \"$d/install.sh\" 'https://coord.example:8443/install/agent.sh'");
    expect(line.split(input.token)).toHaveLength(2);
    expect(line).toContain(`(umask 077 && printf '%s\\n' '${input.token}' > "$d/token")`);
    expect(line).toContain("sh \"$d/install.sh\" --server 'https://coord.example:8443' --coordinator 'coord.example:7443' --ca \"$d/ca.pem\" --token-file \"$d/token\"");
    // It cleans up its directory (with the token) whatever happened, and fails if a step did.
    expect(line).toMatch(/^d=\$\(mktemp -d\) && \{ .*; r=\$\?; rm -rf "\$d"; \[ "\$r" -eq 0 \]; \}$/);
    expect(() => execFileSync('sh', ['-n', '-c', line])).not.toThrow();
  });

  it('names the TLS server when asked', () => {
    expect(installLine({ ...input, serverName: 'handrail-coordinator' })).toContain("--server-name 'handrail-coordinator'");
  });

  it('fills the bundle SHA-256 and version into the script and fingerprints the CA file bytes', () => {
    const bundle = Buffer.from('console.log(1)\n');
    const kit = makeInstallKit({ version: '9.8.7', bundle, scriptTemplate: "V='@HANDRAIL_VERSION@'\nS='@BUNDLE_SHA256@'\nagain @BUNDLE_SHA256@\n", caPem: 'PEM\n' });
    expect(kit.bundleSha256).toBe(sha256Hex(bundle));
    expect(kit.script).toBe(`V='9.8.7'\nS='${kit.bundleSha256}'\nagain ${kit.bundleSha256}\n`);
    expect(kit.caSha256).toBe(execFileSync('sha256sum', { input: 'PEM\n' }).toString().split(' ')[0]);
  });
});
