/**
 * The catalog page (GET /runbooks) through `app.request()`: only what the user may run, search
 * and filters from the query string, hostile queries escaped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HOSTILE, type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('catalog', () => {
  it('lists only the runbooks the user may run, with owner, tags and minutes saved', async () => {
    const a = await h.login('alice', 'alice-password');
    const { html } = await a.get('/runbooks');
    expect(html).toContain('data-runbook="portal-echo"');
    expect(html).toContain('data-runbook="portal-guarded"');
    expect(html).not.toContain('portal-other');
    expect(html).not.toContain("Team B");
    // View-only runbooks are not in the catalog of what one may run.
    expect(html).not.toContain('data-runbook="portal-reference"');
    expect(html).toContain('saves about 12 min');
    expect(html).toContain('needs approval');
    const c = await h.login('carol', 'carol-password');
    const other = (await c.get('/runbooks')).html;
    expect(other).toContain('data-runbook="portal-other"');
    expect(other).not.toContain('data-runbook="portal-echo"');
  });

  it('searches and filters by tag and owner through the query string', async () => {
    const r = await h.login('root', 'root-password');
    const ids = async (q: string): Promise<string[]> => [...(await r.get(`/runbooks${q}`)).html.matchAll(/data-runbook="([^"]+)"/g)].map((m) => m[1] as string);
    expect(await ids('')).toEqual(['portal-echo', 'portal-guarded', 'portal-other', 'portal-reference']);
    expect(await ids('?tag=repair')).toEqual(['portal-guarded']);
    expect(await ids('?owner=team-b')).toEqual(['portal-other']);
    expect(await ids('?q=hello+web')).toEqual(['portal-echo']);
    expect(await ids('?q=nothing-like-this')).toEqual([]);
    expect(await ids(`?q=${encodeURIComponent(HOSTILE)}`)).toEqual([]);
    expect((await r.get(`/runbooks?q=${encodeURIComponent(HOSTILE)}`)).html).not.toContain('<img src=x');
  });
});
