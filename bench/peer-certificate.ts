/**
 * What reading an agent's verified client certificate costs the front door per connection
 * (issue 10: agent connections, reconnect storms), on real TLS connections over 127.0.0.1 with a
 * certificate from the coordinator's CA: the way it reads it (the X509Certificate OpenSSL holds;
 * the issuing CA told by name and key identifier) against the way it did before
 * (getPeerCertificate(), the DER parsed again, an RSA signature check against the CA). CPU of
 * the server's connection handler for that part alone, median over the connections.
 *
 *   node dist/bench/peer-certificate.js [--connections 300] [--rounds 2]
 */
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { createCsr } from '../core/csr.js';
import { initCa, isProbeCertificate, issueAgentCertificate, loadCa, normalizeSerial, parseCsr, subjectCommonName } from '../coordinator/pki/ca.js';
import { CaSource } from '../coordinator/pki/ca-source.js';
import { out } from './harness.js';
import { median } from './proc-stats.js';

const { values: args } = parseArgs({ options: { connections: { type: 'string', default: '300' }, rounds: { type: 'string', default: '2' } } });
const N = Number(args.connections);
const ROUNDS = Number(args.rounds);

const dir = await mkdtemp(join(tmpdir(), 'hr-bench-peer-'));
await initCa({ certsDir: dir });
const ca = await loadCa(dir);
const source = await CaSource.open(dir);
const caPem = await readFile(join(dir, 'ca.pem'));
const caX509 = new X509Certificate(caPem);
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const issued = issueAgentCertificate(ca, parseCsr(createCsr(privateKey, 'bench')), 'agt-bench', { notBefore: Date.now() - 1000, notAfter: Date.now() + 3_600_000 });
const clientKeyPem = privateKey.export({ type: 'pkcs8', format: 'pem' });

type Reader = (s: TLSSocket) => string;
const readers: Record<string, Reader> = {
  'getPeerX509Certificate + checkIssued (now)': (s) => {
    const c = s.getPeerX509Certificate();
    if (!c) return '';
    return [subjectCommonName(c.subject), normalizeSerial(c.serialNumber), c.fingerprint256, isProbeCertificate(c.subjectAltName), source.issuerOfVerified(c)].join(' ');
  },
  'getPeerCertificate + DER parse + RSA verify (before)': (s) => {
    const c = s.getPeerCertificate();
    const cn = typeof c.subject?.CN === 'string' ? c.subject.CN : '';
    const x = new X509Certificate(c.raw);
    const issuer = x.checkIssued(caX509) && x.verify(caX509.publicKey);
    return [cn, normalizeSerial(c.serialNumber), c.fingerprint256, isProbeCertificate(c.subjectaltname), issuer].join(' ');
  },
};

async function measure(read: Reader): Promise<number> {
  const costs: number[] = [];
  const server = createServer({ key: await readFile(join(dir, 'server.key')), cert: await readFile(join(dir, 'server.pem')), ca: caPem, requestCert: true, rejectUnauthorized: false }, (s) => {
    const u0 = process.cpuUsage();
    const seen = read(s);
    const u = process.cpuUsage(u0);
    if (!seen.startsWith('agt-bench ')) throw new Error(`unexpected reading: ${seen}`);
    costs.push(u.user + u.system);
    s.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  for (let i = 0; i < N; i++) {
    await new Promise<void>((res, rej) => {
      const c = connect({ port, host: '127.0.0.1', key: clientKeyPem, cert: issued.pem, ca: caPem, servername: 'handrail-coordinator' });
      c.on('error', rej);
      c.on('close', () => res());
      c.resume();
    });
  }
  await new Promise<void>((r) => server.close(() => r()));
  return median(costs.slice(Math.min(50, Math.floor(N / 5)))); // the first connections compile the code
}

out(`# peer certificate per agent connection — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load ${loadavg()[0]?.toFixed(2)}`);
for (let r = 1; r <= ROUNDS; r++) {
  for (const [name, read] of Object.entries(readers)) out(`round ${r}: ${name}: ${(await measure(read)).toFixed(0)} µs CPU per connection (median of ${N} connections)`);
}
await rm(dir, { recursive: true, force: true });
