/**
 * Seals values the coordinator must keep only until an execution ends (secret option values,
 * so a restarted coordinator can still dispatch). AES-256-GCM with a key in
 * `<data-dir>/keys/secrets.key` (0600); the sealed blob is erased when the execution finishes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static async open(file: string): Promise<SecretBox> {
    try {
      const key = await readFile(file);
      if (key.length !== 32) throw new Error(`${file} must hold 32 bytes`);
      return new SecretBox(key);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      await mkdir(dirname(file), { recursive: true, mode: 0o700 });
      const key = randomBytes(32);
      await writeFile(file, key, { mode: 0o600, flag: 'wx' });
      await chmod(file, 0o600);
      return new SecretBox(key);
    }
  }

  seal(value: Readonly<Record<string, string>>, aad: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    c.setAAD(Buffer.from(aad));
    const body = Buffer.concat([c.update(JSON.stringify(value), 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  open(sealed: Buffer, aad: string): Record<string, string> {
    const d = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, 12));
    d.setAAD(Buffer.from(aad));
    d.setAuthTag(sealed.subarray(12, 28));
    const text = Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
    return JSON.parse(text) as Record<string, string>;
  }
}
