/**
 * Remembered API tokens never outlive what would refuse them: a revocation, a disabled user or
 * a group change made in this process applies to the next request; one made by another process
 * on the data dir (the CLI) once the store's data version is next looked at; an expired token
 * is refused from what was remembered. Without cacheTokens (the CLI) nothing is remembered.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDataDir, type DataDir } from '../../coordinator/data-dir.js';
import { workspace } from '../helpers/processes.js';

const ADMIN = { kind: 'cli' as const, id: 'test' };
const T0 = Date.UTC(2026, 11, 7, 9, 0, 0);
const DAY = 86_400_000;
/** The poll never fires by itself here: the tests look at the data version when they mean to. */
const NEVER = 3_600_000;

describe('API token cache', () => {
  let dir: string;
  /** The coordinator's store, and another process's (the CLI's) connection to the same file. */
  let coordinator: DataDir;
  let cli: DataDir;
  let stop: (() => void) | undefined;

  beforeEach(async () => {
    dir = await workspace('hr-token-cache-');
    coordinator = await openDataDir(join(dir, 'data'));
    cli = await openDataDir(join(dir, 'data'));
    await coordinator.users.add('sue', ['support'], ADMIN, T0);
  });

  afterEach(async () => {
    stop?.();
    stop = undefined;
    await cli.close();
    await coordinator.close();
    await rm(dir, { recursive: true, force: true });
  });

  const who = async (token: string, now = T0): Promise<string | undefined> => {
    const u = await coordinator.users.authenticateToken(token, now);
    return u ? `${u.name}:${u.groups.join(',')}` : undefined;
  };

  it('refuses a token revoked, or a user disabled, in this process at the next request', async () => {
    stop = await coordinator.users.cacheTokens(NEVER);
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(a.token)).toBe('sue:support');
    expect(await who(a.token)).toBe('sue:support');
    await coordinator.users.revokeToken(a.id, ADMIN, T0);
    expect(await who(a.token)).toBeUndefined();

    const b = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(b.token)).toBe('sue:support');
    await coordinator.users.setDisabled('sue', true, ADMIN, T0);
    expect(await who(b.token)).toBeUndefined();
    await coordinator.users.setDisabled('sue', false, ADMIN, T0);
    expect(await who(b.token)).toBe('sue:support');
    await coordinator.users.setGroups('sue', ['web-leads'], ADMIN);
    expect(await who(b.token)).toBe('sue:web-leads');
  });

  it('refuses a token revoked by another process once the data version is looked at, and sees group changes', async () => {
    stop = await coordinator.users.cacheTokens(NEVER);
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    const b = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(a.token)).toBe('sue:support');
    expect(await who(b.token)).toBe('sue:support');
    await cli.users.revokeToken(a.id, ADMIN, T0);
    await cli.users.setGroups('sue', ['admins'], ADMIN);
    await coordinator.users.noticeForeignWrites();
    expect(await who(a.token)).toBeUndefined();
    expect(await who(b.token)).toBe('sue:admins');
    await cli.users.setDisabled('sue', true, ADMIN, T0);
    await coordinator.users.noticeForeignWrites();
    expect(await who(b.token)).toBeUndefined();
  });

  it('notices another process on its own poll', async () => {
    stop = await coordinator.users.cacheTokens(10);
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(a.token)).toBe('sue:support');
    await cli.users.revokeToken(a.id, ADMIN, T0);
    // Waits for the observable end state (the poll runs every 10 ms), not for a set time.
    while ((await who(a.token)) !== undefined) await new Promise((r) => setTimeout(r, 5));
    expect(await who(a.token)).toBeUndefined();
  });

  it('refuses a remembered token once it has expired', async () => {
    stop = await coordinator.users.cacheTokens(NEVER);
    const a = await coordinator.users.issueToken('sue', 60_000, null, ADMIN, T0);
    expect(await who(a.token, T0 + 59_999)).toBe('sue:support');
    expect(await who(a.token, T0 + 60_000)).toBeUndefined();
  });

  it('does not remember what a lookup read before a revocation committed', async () => {
    stop = await coordinator.users.cacheTokens(NEVER);
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    // The lookup's read and the revocation race on the connection; whichever comes first, the
    // token is refused once the revocation has committed.
    const [, seen] = await Promise.all([coordinator.users.revokeToken(a.id, ADMIN, T0), who(a.token)]);
    expect([undefined, 'sue:support']).toContain(seen);
    expect(await who(a.token)).toBeUndefined();
  });

  it('remembers nothing without cacheTokens: another process\'s revocation applies at once', async () => {
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(a.token)).toBe('sue:support');
    await cli.users.revokeToken(a.id, ADMIN, T0);
    expect(await who(a.token)).toBeUndefined();
  });

  it('drops what it remembered when it stops', async () => {
    stop = await coordinator.users.cacheTokens(NEVER);
    const a = await coordinator.users.issueToken('sue', DAY, null, ADMIN, T0);
    expect(await who(a.token)).toBe('sue:support');
    stop();
    stop = undefined;
    await cli.users.revokeToken(a.id, ADMIN, T0);
    expect(await who(a.token)).toBeUndefined();
  });
});
