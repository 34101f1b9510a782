import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { initCa, issueAgentCertificate, loadCa, parseCsr, normalizeSerial } from '../../coordinator/pki/ca.js';
import { createCsr } from '../../core/csr.js';
import { HandrailError } from '../../core/errors.js';

describe('certificate authority', () => {
  it('creates a CA and server certificate with 0600 keys and configured SANs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-ca-'));
    const { sans } = await initCa({ certsDir: dir, sans: ['coord.example.net', '10.1.2.3'] });
    expect(sans).toContain('coord.example.net');
    for (const f of ['ca.key', 'server.key']) expect((await stat(join(dir, f))).mode & 0o777).toBe(0o600);
    const server = new X509Certificate(await readFile(join(dir, 'server.pem')));
    expect(server.subjectAltName).toContain('DNS:coord.example.net');
    expect(server.subjectAltName).toContain('IP Address:10.1.2.3');
    expect(server.subjectAltName).toContain('DNS:handrail-coordinator');
    const ca = new X509Certificate(await readFile(join(dir, 'ca.pem')));
    expect(server.verify(ca.publicKey)).toBe(true);
    expect(ca.ca).toBe(true);
    // openssl agrees the chain is valid for a server
    const out = execFileSync('openssl', ['verify', '-purpose', 'sslserver', '-CAfile', join(dir, 'ca.pem'), join(dir, 'server.pem')]).toString();
    expect(out).toContain('OK');
  });

  it('refuses to overwrite an existing CA without force, and replaces it with force', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-ca-'));
    await initCa({ certsDir: dir });
    const before = await readFile(join(dir, 'ca.pem'), 'utf8');
    await expect(initCa({ certsDir: dir })).rejects.toThrow(/already exists/);
    await expect(initCa({ certsDir: dir })).rejects.toBeInstanceOf(HandrailError);
    await initCa({ certsDir: dir, force: true });
    expect(await readFile(join(dir, 'ca.pem'), 'utf8')).not.toBe(before);
  });

  it('issues a client certificate from a CSR that openssl verifies against the CA', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'hr-ca-'));
    await initCa({ certsDir: dir });
    const ca = await loadCa(dir);
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const csr = parseCsr(createCsr(privateKey, 'web-1'));
    expect(csr.commonName).toBe('web-1');
    const now = Date.now();
    const issued = issueAgentCertificate(ca, csr, 'agt-123', { notBefore: now - 1000, notAfter: now + 3600_000 });
    const x = new X509Certificate(issued.pem);
    expect(x.subject).toContain('CN=agt-123');
    expect(normalizeSerial(x.serialNumber)).toBe(issued.serial);
    expect(x.checkPrivateKey(privateKey)).toBe(true);
    const file = join(dir, 'agent.pem');
    await writeFile(file, issued.pem);
    const out = execFileSync('openssl', ['verify', '-purpose', 'sslclient', '-CAfile', join(dir, 'ca.pem'), file]).toString();
    expect(out).toContain('OK');
  });

  it.each([
    ['garbage', 'not a valid PEM'],
    ['-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'not a valid PEM'],
  ])('rejects a malformed CSR (%#)', (pem, message) => {
    expect(() => parseCsr(pem)).toThrow(message);
  });

  it('writes a PKCS#10 request that openssl verifies, with the name and the key it was given', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    for (const name of ['web-1', 'agt-0123456789abcdef', 'h'.repeat(200), 'höst-ü']) {
      const pem = createCsr(privateKey, name);
      const text = execFileSync('openssl', ['req', '-verify', '-noout', '-subject', '-pubkey', '-nameopt', 'utf8,sep_comma_plus'], { input: pem, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
      expect(text).toContain(`subject=CN=${name}`);
      expect(text).toContain(publicKey.export({ type: 'spki', format: 'pem' }).toString().trim());
      // Agent names are ASCII (enrollment refuses others); forge hands back UTF-8 bytes undecoded.
      if (/^[\x20-\x7e]*$/.test(name)) expect(parseCsr(pem).commonName).toBe(name);
    }
    // Only RSA keys: the coordinator accepts nothing else.
    expect(() => createCsr(generateKeyPairSync('ed25519').privateKey, 'x')).toThrow(/RSA/);
  });

  it('rejects a CSR with a weak key or a forged signature', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(() => parseCsr(createCsr(weak, 'x'))).toThrow(/at least 2048/);
    const a = createCsr(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, 'aaaa');
    // Flip one byte of the signed body: the self-signature must no longer verify.
    const body = a.split('\n').filter((l) => !l.startsWith('-----')).join('');
    const der = Buffer.from(body, 'base64');
    der[40] = (der[40] as number) ^ 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(() => parseCsr(tampered)).toThrow(/signature|valid/);
  });
});
