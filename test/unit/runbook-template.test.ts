import { describe, expect, it } from 'vitest';
import type { AgentStep, Runbook } from '../../coordinator/runbooks/model.js';
import { renderAgentStep, renderStepForDisplay, secretOptionNames, type TemplateContext } from '../../coordinator/runbooks/template.js';
import { validateRunbook } from '../../coordinator/runbooks/validate-runbook.js';

const runbook = (steps: unknown[]): Runbook => {
  const r = validateRunbook({
    apiVersion: 'handrail/v1',
    kind: 'Runbook',
    metadata: { id: 'rb', title: 'T', owner: 'team-x' },
    spec: {
      options: [
        { name: 'msg', type: 'string' },
        { name: 'max-age', type: 'integer', default: 7 },
        { name: 'token', type: 'secret' },
      ],
      targets: { selector: '*' },
      steps,
    },
  });
  if (!r.runbook) throw new Error(JSON.stringify(r.issues));
  return r.runbook;
};

const ctx = (msg: string): TemplateContext => ({
  options: { msg, 'max-age': '7', token: 's3cret-T0KEN' },
  host: { id: 'agt-1', name: 'web-1', labels: { zone: 'eu west' } },
  executionId: 'exe-1',
});

const HOSTILE = ['; rm -rf /', '$(id)', '`id`', 'line1\nline2', '" -o /etc/passwd "', "'", '${host.name}', 'a b c', '-', '', ' ', '\t', '$((1+1))', '>/dev/sda', 'x'.repeat(4096)];

describe('templates in argv and env', () => {
  const rb = runbook([
    {
      name: 's',
      run: ['echo', '${option.msg}', '--reason=${option.msg}', 'on ${host.name} (${host.labels.zone}) for ${execution.id}', '$${option.msg}'],
      env: { WHY: '${option.msg}', WHERE: '${host.id}' },
      workingDir: '/srv/${host.labels.zone}',
    },
  ]);
  const step = rb.spec.steps[0] as AgentStep;

  it.each(HOSTILE)('a value stays inside its one element, verbatim: %j', (v) => {
    const r = renderAgentStep(step, ctx(v), secretOptionNames(rb));
    expect(r.argv).toEqual(['echo', v, `--reason=${v}`, 'on web-1 (eu west) for exe-1', '${option.msg}']);
    expect(r.argv).toHaveLength(step.run?.length ?? -1);
    expect(r.env['WHY']).toBe(v);
    expect(r.env['HANDRAIL_OPT_MSG']).toBe(v);
    expect(r.workingDir).toBe('/srv/eu west');
    expect(r.script).toBeUndefined();
  });

  it('passes every option as HANDRAIL_OPT_<NAME>, plus the host name, and names the secret variables', () => {
    const r = renderAgentStep(step, ctx('hi'), secretOptionNames(rb));
    expect(r.env).toEqual({ HANDRAIL_OPT_MSG: 'hi', HANDRAIL_OPT_MAX_AGE: '7', HANDRAIL_OPT_TOKEN: 's3cret-T0KEN', HANDRAIL_HOST_NAME: 'web-1', WHY: 'hi', WHERE: 'agt-1' });
    expect(r.secretEnv).toEqual(['HANDRAIL_OPT_TOKEN']);
  });
});

describe('scripts', () => {
  it('are sent exactly as written: option values reach them only through the environment', () => {
    const rb = runbook([{ name: 's', script: 'printf "%s\\n" "$HANDRAIL_OPT_MSG"\n', interpreter: ['/bin/bash', '-eu'] }]);
    const v = '"; rm -rf / #';
    const r = renderAgentStep(rb.spec.steps[0] as AgentStep, ctx(v), secretOptionNames(rb));
    expect(r.script).toEqual({ interpreter: ['/bin/bash', '-eu'], body: 'printf "%s\\n" "$HANDRAIL_OPT_MSG"\n' });
    expect(r.script?.body).not.toContain(v);
    expect(r.env['HANDRAIL_OPT_MSG']).toBe(v);
    expect(r.argv).toEqual([]);
  });

  it('default to /bin/sh -eu', () => {
    const rb = runbook([{ name: 's', script: 'true' }]);
    expect(renderAgentStep(rb.spec.steps[0] as AgentStep, ctx(''), new Set()).script?.interpreter).toEqual(['/bin/sh', '-eu']);
  });
});

describe('renderStepForDisplay', () => {
  const rb = runbook([
    { name: 'call', run: ['curl', '-H', 'Authorization: Bearer ${option.token}', 'https://api/${host.name}', '${option.msg}'], env: { TOK: '${option.token}', PLAIN: 'x' } },
    { name: 'hook', http: { method: 'POST', url: 'https://hooks/${host.name}?m=${option.msg}', headers: { Authorization: 'Bearer ${option.token}' }, body: '{"m":"${option.msg}"}', expectStatus: [200, 204] } },
    { name: 'nap', sleep: '5s' },
    { name: 'gate', approval: { required: 2, from: ['group:leads'], message: 'ok?' } },
    { name: 'sh', script: 'echo "$HANDRAIL_OPT_TOKEN" | wc -c' },
  ]);
  const shown = rb.spec.steps.map((s) => renderStepForDisplay(rb, s, ctx('hello world')));

  it('shows each step as it would run, with secrets as ********', () => {
    expect(shown).toEqual([
      {
        kind: 'agent',
        name: 'call',
        argv: ['curl', '-H', 'Authorization: Bearer ********', 'https://api/web-1', 'hello world'],
        script: undefined,
        env: { HANDRAIL_OPT_MSG: 'hello world', HANDRAIL_OPT_MAX_AGE: '7', HANDRAIL_OPT_TOKEN: '********', HANDRAIL_HOST_NAME: 'web-1', TOK: '********', PLAIN: 'x' },
        workingDir: '',
        timeoutMs: 600_000,
        retries: 0,
      },
      { kind: 'http', name: 'hook', method: 'POST', url: 'https://hooks/web-1?m=hello%20world', headers: { Authorization: 'Bearer ********' }, body: '{"m":"hello world"}', expectStatus: [200, 204], timeoutMs: 600_000, retries: 0 },
      { kind: 'sleep', name: 'nap', durationMs: 5000 },
      { kind: 'approval', name: 'gate', required: 2, from: ['group:leads'], message: 'ok?' },
      { kind: 'agent', name: 'sh', argv: undefined, script: { interpreter: ['/bin/sh', '-eu'], body: 'echo "$HANDRAIL_OPT_TOKEN" | wc -c' }, env: expect.objectContaining({ HANDRAIL_OPT_TOKEN: '********' }) as unknown, workingDir: '', timeoutMs: 600_000, retries: 0 },
    ]);
  });

  it('never contains the secret anywhere', () => {
    expect(JSON.stringify(shown)).not.toContain('s3cret');
  });
});
