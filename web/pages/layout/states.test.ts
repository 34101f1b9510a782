/**
 * Every execution, node and step-run state main has, as the pages draw it (tone, meaning, label),
 * and the history filter's states.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PortalHarness, teamsPortal } from '../../../test/helpers/portal-app.js';

let h: PortalHarness;
beforeEach(async () => (h = await teamsPortal()));
afterEach(() => h.close());

describe('every state main has, as the pages show it', () => {
  const STEP_STATES = ['dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'canceled', 'error', 'interrupted', 'rejected', 'expired', 'lost'] as const;
  const NODE_STATES = ['pending', 'running', 'succeeded', 'failed', 'skipped', 'canceled'] as const;

  it('draws each execution, node and step-run state with its tone and meaning; an interrupted step says it runs again', async () => {
    await h.insertExecution({ id: 'exe-states', runbookId: 'portal-echo', requestedBy: 'alice', options: {}, state: 'running' });
    for (const [i, state] of NODE_STATES.entries()) {
      await h.insertNode('exe-states', i, `agt-n${i}`, `node-${i}`, state);
    }
    for (const [i, state] of STEP_STATES.entries()) {
      await h.insertStepRun({ id: `sr-s${i}`, executionId: 'exe-states', agentId: 'agt-n1', attempt: i + 1, name: `step-${state}`, state, dispatchedAt: h.clock + i });
    }
    const a = await h.login('alice', 'alice-password');
    const { status, html } = await a.get('/executions/exe-states');
    expect(status).toBe(200);
    const badge = (attr: string): string => {
      const at = html.indexOf(attr);
      expect(at, attr).toBeGreaterThan(0);
      const open = html.lastIndexOf('<span', at);
      return html.slice(open, html.indexOf('</span>', at));
    };
    for (const [i, state] of NODE_STATES.entries()) {
      const b = badge(`data-node-state="agt-n${i}"`);
      expect(b).toMatch(new RegExp(`class="state state-${state} tone-(good|bad|attention|active|idle)"`));
      expect(b).toMatch(/title="[^"]+"/);
      expect(b).toContain(`>${state.replace(/_/g, ' ')}`);
    }
    for (const [i, state] of STEP_STATES.entries()) {
      const li = html.slice(html.indexOf(`data-step-run="sr-s${i}"`), html.indexOf('</li>', html.indexOf(`data-step-run="sr-s${i}"`)));
      expect(li, state).toMatch(new RegExp(`class="state state-${state} tone-\\w+" title="[^"]+" data-step-state="">${state.replace(/_/g, ' ')}`));
      if (state === 'interrupted') expect(li).toContain('runs again when the agent is back');
      else expect(li).not.toContain('runs again when the agent is back');
    }
    expect(badge('data-execution-state')).toContain('tone-active');
  });

  it('offers every execution state in the history filter and takes each', async () => {
    const a = await h.login('alice', 'alice-password');
    const states = ['queued', 'awaiting_approval', 'running', 'succeeded', 'failed', 'canceled', 'timed_out'];
    const page = await a.get('/executions');
    for (const s of states) {
      expect(page.html).toContain(`<option value="${s}"`);
      expect((await a.get(`/executions?state=${s}`)).status).toBe(200);
    }
  });
});
