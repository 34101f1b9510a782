import { describe, expect, it } from 'vitest';
import { validateRunbook } from '../../coordinator/runbooks/validate-runbook.js';
import { compileRunbook } from '../../coordinator/runbooks/compile.js';

const base = (spec: Record<string, unknown>, meta: Record<string, unknown> = {}): unknown => ({
  apiVersion: 'handrail/v1',
  kind: 'Runbook',
  metadata: { id: 'rb', title: 'T', owner: 'team-x', ...meta },
  spec: { targets: { selector: 'role=web' }, steps: [{ name: 's', run: ['true'] }], ...spec },
});

describe('runbook validation', () => {
  it.each<[string, unknown, string]>([
    ['missing targets', { apiVersion: 'handrail/v1', kind: 'Runbook', metadata: { id: 'rb', title: 'T', owner: 'o' }, spec: { steps: [{ name: 's', run: ['true'] }] } }, '"targets" is required'],
    ['two step kinds', base({ steps: [{ name: 's', run: ['x'], script: 'y' }] }), 'exactly one of run, script, http, sleep, approval (found run and script)'],
    ['run as a string', base({ steps: [{ name: 's', run: 'systemctl restart web' }] }), '"run" is a list of arguments (no shell)'],
    ['templated command', base({ options: [{ name: 'c', type: 'string' }], steps: [{ name: 's', run: ['${option.c}', 'x'] }] }), 'the command itself cannot be templated'],
    ['reserved env', base({ steps: [{ name: 's', run: ['x'], env: { HANDRAIL_AGENT_ID: 'x' } }] }), 'reserved'],
    ['secret with a default', base({ options: [{ name: 'p', type: 'secret', default: 'x' }] }), 'a secret option cannot have a default'],
    ['enum without values', base({ options: [{ name: 'e', type: 'enum' }] }), 'needs "values"'],
    ['enum default outside values', base({ options: [{ name: 'e', type: 'enum', values: ['a'], default: 'b' }] }), 'the default does not satisfy the option itself: "b" is not one of a'],
    ['secret in a URL', base({ options: [{ name: 'p', type: 'secret' }], steps: [{ name: 's', http: { url: 'https://x/${option.p}' } }] }), 'secret option "p" cannot be used here'],
    ['bad URL scheme', base({ steps: [{ name: 's', http: { url: 'ftp://x/' } }] }), 'url must start with http:// or https://'],
    ['approval as a handler', base({ onFailure: [{ name: 'h', approval: { from: ['group:x'] } }] }), 'onFailure handlers cannot wait for approval'],
    ['bad concurrency', base({ concurrency: '150%' }), 'concurrency must be'],
    ['bad approver subject', base({ approval: { required: 1, from: ['bob'] } }), 'use user:NAME, group:NAME or *'],
    ['unknown top-level field', { ...(base({}) as object), extra: 1 }, 'unknown field "extra"'],
    ['wrong apiVersion', { ...(base({}) as object), apiVersion: 'v2' }, 'apiVersion must be "handrail/v1"'],
  ])('%s', (_n, value, message) => {
    const r = validateRunbook(value);
    expect(r.runbook).toBeUndefined();
    expect(r.issues.map((i) => i.message).join('\n')).toContain(message);
  });

  it('compiles a valid runbook into plan and per-host rendering, masking secrets for records', () => {
    const r = validateRunbook(
      base({
        options: [{ name: 'reason', type: 'string', required: true }, { name: 'token', type: 'secret' }],
        strategy: 'parallel',
        concurrency: '25%',
        maxErrors: 2,
        steps: [
          { name: 'call', run: ['curl', '-H', 'Authorization: ${option.token}', 'https://x/${host.name}', '--data', '${option.reason}'], timeout: '30s', retries: 1, retryBackoff: '2s', env: { WHY: '${option.reason}', TOK: '${option.token}' } },
          { name: 'wait', sleep: '5s' },
          { name: 'gate', approval: { required: 2, from: ['group:leads'] } },
          { name: 'notify', http: { method: 'POST', url: 'https://hooks.example/${host.name}?r=${option.reason}', headers: { 'X-Token': '${option.token}' }, expectStatus: [200, 204] } },
        ],
      }),
    );
    expect(r.issues).toEqual([]);
    const c = compileRunbook(r.runbook!, 'src', 'digest');
    expect(c.plan).toMatchObject({ strategy: 'parallel', concurrency: { percent: 25 }, maxErrors: 2 });
    expect(c.plan.steps.map((s) => s.gate)).toEqual([false, false, true, false]);
    const ctx = { executionId: 'exe-1', host: { id: 'agt-1', name: 'web 1', labels: {} }, options: { reason: 'a;b $(c)', token: 's3cret' } };
    const a = c.renderAgent(false, 0, ctx);
    expect(a.argv).toEqual(['curl', '-H', 'Authorization: s3cret', 'https://x/web 1', '--data', 'a;b $(c)']);
    expect(a.argvForRecords).toEqual(['curl', '-H', '********', 'https://x/web 1', '--data', 'a;b $(c)']);
    expect(a.env).toMatchObject({ WHY: 'a;b $(c)', TOK: 's3cret', HANDRAIL_OPT_REASON: 'a;b $(c)', HANDRAIL_OPT_TOKEN: 's3cret' });
    expect([...a.secretEnv].sort()).toEqual(['HANDRAIL_OPT_TOKEN', 'TOK']);
    expect(a.timeoutMs).toBe(30_000);
    const h = c.renderHttp(false, 3, ctx);
    expect(h.url).toBe('https://hooks.example/web%201?r=a%3Bb%20%24(c)');
    expect(h.secretHeaders).toEqual(['X-Token']);
    expect(c.step(false, 2)).toMatchObject({ kind: 'approval', approval: { required: 2, from: ['group:leads'] } });
    expect(c.step(false, 1)).toMatchObject({ kind: 'sleep', sleepMs: 5000 });
  });
});
