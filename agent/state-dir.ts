/**
 * The agent's state directory:
 *   identity/agent.pem   private key + certificate (0600; replaced atomically on renewal)
 *   identity/ca.pem      the coordinator CA(s) it trusts (two during a CA roll-over)
 *   identity/agent.json  agent id, name, coordinator address, trusted dispatch keys
 *   journal.log          nonces (replay protection), and the signed request, pid and signed
 *                        result of every step not yet acknowledged (see step-journal.ts)
 *   spool/               captured output of those steps, and refused results (see spool.ts)
 *   nonces.log           (agents before the journal) read once into the journal, then removed
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { normalizeSerial } from '../core/x509-serial.js';

export interface AgentIdentityFile {
  readonly agentId: string;
  readonly name: string;
  readonly coordinator: string;
  readonly dispatchKeys: ReadonlyArray<{ keyId: string; publicKeyPem: string }>;
  /** Version of the signed key set the keys came from (absent: enrolled before signed sets). */
  readonly dispatchKeySetVersion?: number;
  /** Version of the CA bundle identity/ca.pem came from (absent: the CA pinned at enrollment). */
  readonly caBundleVersion?: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface AgentCredentials {
  readonly keyPem: string;
  readonly certPem: string;
  readonly privateKey: KeyObject;
  readonly serial: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export class StateDir {
  constructor(readonly root: string) {}

  get identityDir(): string {
    return join(this.root, 'identity');
  }
  get credentialsFile(): string {
    return join(this.identityDir, 'agent.pem');
  }
  get caFile(): string {
    return join(this.identityDir, 'ca.pem');
  }
  get identityFile(): string {
    return join(this.identityDir, 'agent.json');
  }
  get spoolDir(): string {
    return join(this.root, 'spool');
  }
  get journalFile(): string {
    return join(this.root, 'journal.log');
  }
  /** Where agents before the step journal kept their nonces. */
  get legacyNoncesFile(): string {
    return join(this.root, 'nonces.log');
  }

  async ensure(): Promise<void> {
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    await chmod(this.root, 0o700);
    await mkdir(this.identityDir, { recursive: true, mode: 0o700 });
    await mkdir(this.spoolDir, { recursive: true, mode: 0o700 });
  }

  async isEnrolled(): Promise<boolean> {
    try {
      await stat(this.credentialsFile);
      await stat(this.identityFile);
      return true;
    } catch {
      return false;
    }
  }

  async readIdentity(): Promise<AgentIdentityFile> {
    return JSON.parse(await readFile(this.identityFile, 'utf8')) as AgentIdentityFile;
  }

  async writeIdentity(id: AgentIdentityFile): Promise<void> {
    await atomicWrite(this.identityFile, JSON.stringify(id, null, 2) + '\n', 0o600);
  }

  async readCa(): Promise<string> {
    return readFile(this.caFile, 'utf8');
  }

  async writeCa(pem: string): Promise<void> {
    await atomicWrite(this.caFile, pem, 0o644);
  }

  async readCredentials(): Promise<AgentCredentials> {
    const text = await readFile(this.credentialsFile, 'utf8');
    return parseCredentials(text);
  }

  async writeCredentials(keyPem: string, certPem: string): Promise<AgentCredentials> {
    const creds = parseCredentials(keyPem.trimEnd() + '\n' + certPem);
    await atomicWrite(this.credentialsFile, keyPem.trimEnd() + '\n' + certPem, 0o600);
    return creds;
  }
}

/**
 * agent.json has more than one writer (dispatch keys, CA bundle version): each change goes
 * through here, one at a time, onto the latest content, so that neither undoes the other.
 */
export class IdentityUpdater {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly state: StateDir,
    private current: AgentIdentityFile,
  ) {}

  get identity(): AgentIdentityFile {
    return this.current;
  }

  update(change: Partial<Omit<AgentIdentityFile, 'agentId'>>): Promise<void> {
    const next = this.queue.then(async () => {
      const id = { ...this.current, ...change };
      await this.state.writeIdentity(id);
      this.current = id;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}

function parseCredentials(text: string): AgentCredentials {
  const keyMatch = /-----BEGIN PRIVATE KEY-----[\s\S]+?-----END PRIVATE KEY-----\n?/.exec(text);
  const certMatch = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/.exec(text);
  if (!keyMatch || !certMatch) throw new Error('agent credentials file is damaged: expected a private key and a certificate');
  const privateKey = createPrivateKey(keyMatch[0]);
  const cert = new X509Certificate(certMatch[0]);
  if (!cert.checkPrivateKey(privateKey)) throw new Error('agent certificate does not match its private key');
  return {
    keyPem: keyMatch[0],
    certPem: certMatch[0],
    privateKey,
    serial: normalizeSerial(cert.serialNumber),
    notBefore: Date.parse(cert.validFrom),
    notAfter: Date.parse(cert.validTo),
  };
}

/** Write-then-rename so a crash never leaves a half-written file behind. */
export async function atomicWrite(path: string, content: string | Uint8Array, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, mode);
  await rename(tmp, path);
  // The rename itself survives power loss only once the directory is synced.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
