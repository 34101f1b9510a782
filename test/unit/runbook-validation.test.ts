import { describe, expect, it } from 'vitest';
import { validateRunbook } from '../../coordinator/runbooks/validate-runbook.js';
import { compileRunbook } from '../../coordinator/runbooks/compile.js';
import { formatPath } from '../../core/validation.js';

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

const exact = (value: unknown): string[] => validateRunbook(value).issues.map((i) => `${formatPath(i.path)}: ${i.message}`);

describe('runbook validation: bad documents and their exact issues', () => {
  it.each<[string, unknown, string[]]>([
    ['not a mapping', 'hello', ['(document): a runbook must be a mapping (key: value)']],
    ['empty document', {}, ['apiVersion: apiVersion must be "handrail/v1"', 'kind: kind must be "Runbook"', 'metadata: metadata must be a mapping (key: value)', 'spec: spec must be a mapping (key: value)']],
    ['blank title', base({}, { title: '' }), ['metadata.title: "title" cannot be empty (what the runbook does, as support staff would say it)']],
    ['missing owner', base({}, { owner: undefined }), ['metadata.owner: "owner" is required (a team name such as team-web)']],
    ['misspelt metadata field', base({}, { tilte: 'x' }), ['metadata.tilte: unknown field "tilte" in metadata; did you mean "title"?']],
    ['misspelt spec field', base({ stratgy: 'rolling' }), ['spec.stratgy: unknown field "stratgy" in spec; did you mean "strategy"?']],
    ['misspelt step field', base({ steps: [{ name: 's', run: ['x'], tiemout: '5s' }] }), ['spec.steps[0].tiemout: unknown field "tiemout" in a step; did you mean "timeout"?']],
    ['misspelt step kind', base({ steps: [{ name: 's', scirpt: 'echo' }] }), ['spec.steps[0].scirpt: unknown field "scirpt" in a step; did you mean "script"?']],
    ['no step kind', base({ steps: [{ name: 's' }] }), ['spec.steps[0]: a step needs one of run, script, http, sleep, approval']],
    ['blank step name', base({ steps: [{ name: ' ', run: ['x'] }] }), ['spec.steps[0].name: "name" cannot be empty (every step has a name, unique within the runbook)']],
    ['run with nothing', base({ steps: [{ name: 's', run: null }] }), ['spec.steps[0].run: "run" needs at least the command: run: [systemctl, restart, web]']],
    ['run as a shell string', base({ steps: [{ name: 's', run: 'ls -l' }] }), ['spec.steps[0].run: "run" is a list of arguments (no shell): write run: [systemctl, restart, web], or use script: for shell code']],
    ['duplicate step names across steps and handlers', base({ steps: [{ name: 'a', run: ['x'] }], onFailure: [{ name: 'a', run: ['y'] }] }), ['spec.onFailure[0].name: duplicate step name "a": step names must be unique within a runbook']],
    ['undeclared option in argv', base({ steps: [{ name: 's', run: ['echo', '${option.nope}'] }] }), ['spec.steps[0].run[1]: ${option.nope} refers to an option that does not exist (declare it under spec.options)']],
    ['undeclared option in env', base({ steps: [{ name: 's', run: ['x'], env: { A: 'v=${option.nope}' } }] }), ['spec.steps[0].env.A: ${option.nope} refers to an option that does not exist (declare it under spec.options)']],
    ['unknown template variable', base({ steps: [{ name: 's', run: ['echo', '${env.HOME}'] }] }), ['spec.steps[0].run[1]: unknown template variable "${env.HOME}": use ${option.NAME}, ${host.name}, ${host.id}, ${host.labels.KEY} or ${execution.id} (write $${ for a literal ${)']],
    ['option template in a script', base({ options: [{ name: 'max-age', type: 'integer' }], steps: [{ name: 's', script: 'find . -mtime ${ option.max-age }' }] }), ['spec.steps[0].script: scripts take no templates: use the environment variable $HANDRAIL_OPT_MAX_AGE instead of ${option.max-age} (quote it: "$HANDRAIL_OPT_MAX_AGE")']],
    ['host templates in a script', base({ steps: [{ name: 's', script: 'echo ${host.name} ${host.labels.zone} ${host.name}' }] }), [
      'spec.steps[0].script: scripts take no templates: use the environment variable $HANDRAIL_HOST_NAME instead of ${host.name}',
      'spec.steps[0].script: scripts take no templates: pass it through env (e.g. env: { VALUE: "${host.labels.zone}" }) and use "$VALUE" instead of ${host.labels.zone}',
    ]],
    ['shell variables in a script are fine', base({ steps: [{ name: 's', script: 'echo "${HOME}" "${1:-x}" "${HANDRAIL_OPT_X:-}"' }] }), []],
    ['templated interpreter', base({ steps: [{ name: 's', script: 'x', interpreter: ['/bin/${option.x}'] }] }), ['spec.steps[0].interpreter[0]: the interpreter takes no templates: name the program and its flags literally']],
    ['bad duration', base({ steps: [{ name: 's', run: ['x'], timeout: '5 minutes' }] }), ['spec.steps[0].timeout: invalid duration "5 minutes": use a number and a unit, e.g. 500ms, 30s, 5m, 1h, 1h30m, 2d']],
    ['zero timeout', base({ steps: [{ name: 's', run: ['x'], timeout: '0s' }] }), ['spec.steps[0].timeout: "timeout" must be longer than 0']],
    ['duration as a number', base({ steps: [{ name: 's', run: ['x'], retryBackoff: 5 }] }), ['spec.steps[0].retryBackoff: "retryBackoff" must be a duration like 30s or 5m']],
    ['too many retries', base({ steps: [{ name: 's', run: ['x'], retries: 50 }] }), ['spec.steps[0].retries: "retries" must be at most 20']],
    ['bad selector', base({ targets: { selector: 'role in (a,' } }), ['spec.targets.selector: invalid selector: expected a value at end of selector (column 12)']],
    ['targets as a string', base({ targets: 'role=web' }), ['spec.targets: targets must be a mapping (key: value)']],
    ['no steps', base({ steps: [] }), ['spec.steps: a runbook needs at least one step']],
    ['zero concurrency', base({ concurrency: 0 }), ['spec.concurrency: concurrency must be a whole number ≥ 1 or a percentage like 25%']],
    ['misspelt approval field', base({ approval: { required: 1, form: ['group:x'] } }), ['spec.approval.form: unknown field "form" in approval; did you mean "from"?']],
    ['bad regex', base({ options: [{ name: 'w', pattern: '([a-z' }] }), ['spec.options[0].pattern: pattern is not a valid regular expression: Invalid regular expression: /([a-z/u: Unterminated character class']],
    ['pattern on an integer', base({ options: [{ name: 'n', type: 'integer', pattern: '^1$' }] }), ['spec.options[0].pattern: pattern applies to string and secret options, not integer']],
    ['unknown option type', base({ options: [{ name: 'n', type: 'float' }] }), ['spec.options[0].type: type must be one of string, integer, boolean, enum, secret']],
    ['integer default above max', base({ options: [{ name: 'n', type: 'integer', default: 9, max: 5 }] }), ['spec.options[0].default: the default does not satisfy the option itself: 9 is above the maximum 5']],
    ['boolean default not a boolean', base({ options: [{ name: 'b', type: 'boolean', default: 'yes' }] }), ['spec.options[0].default: the default does not satisfy the option itself: "yes" is not true or false']],
    ['string default longer than max', base({ options: [{ name: 's', max: 3, default: 'abcd' }] }), ['spec.options[0].default: the default does not satisfy the option itself: is 4 characters long; at most 3 are allowed']],
    ['default not matching the pattern', base({ options: [{ name: 's', pattern: '^[a-z]+$', default: 'A1' }] }), ['spec.options[0].default: the default does not satisfy the option itself: "A1" does not match the pattern ^[a-z]+$']],
    ['enum default outside values', base({ options: [{ name: 'e', type: 'enum', values: ['a', 'b'], default: 'c' }] }), ['spec.options[0].default: the default does not satisfy the option itself: "c" is not one of a, b']],
    ['options reaching steps as the same variable', base({ options: [{ name: 'max-age', type: 'integer' }, { name: 'max_age', type: 'integer' }] }), ['spec.options[1].name: option "max_age" and option "max-age" would both reach steps as $HANDRAIL_OPT_MAX_AGE: rename one']],
    ['duplicate option', base({ options: [{ name: 'a' }, { name: 'a' }] }), ['spec.options[1].name: duplicate option "a"']],
    ['prototype-setting option name', base({ options: [{ name: '__proto__' }] }), ['spec.options[0].name: "__proto__" cannot be an option name: choose another']],
    ['bad header name', base({ steps: [{ name: 's', http: { url: 'https://x', headers: { 'bad header': 'x' } } }] }), ['spec.steps[0].http.headers.bad header: "bad header" is not a valid header name']],
    ['bad status codes', base({ steps: [{ name: 's', http: { url: 'https://x', expectStatus: [200, 700] } }] }), ['spec.steps[0].http.expectStatus: status codes are 100 to 599']],
    ['sleep without a duration', base({ steps: [{ name: 's', sleep: 5 }] }), ['spec.steps[0].sleep: sleep takes a duration like 30s']],
    ['secret in a working directory', base({ options: [{ name: 'p', type: 'secret' }], steps: [{ name: 's', run: ['x'], workingDir: '/tmp/${option.p}' }] }), ['spec.steps[0].workingDir: secret option "p" cannot be used here: it would be recorded in clear']],
  ])('%s', (_n, value, issues) => {
    expect(exact(value)).toEqual(issues);
    expect(validateRunbook(value).runbook === undefined).toBe(issues.length > 0);
  });

  it('accepts lower-case http methods and says the result in upper case', () => {
    const r = validateRunbook(base({ steps: [{ name: 's', http: { method: 'post', url: 'https://x' } }] }));
    expect(r.runbook?.spec.steps[0]).toMatchObject({ kind: 'http', method: 'POST' });
  });

  // Every field of a valid document replaced by junk of every shape: the validator never throws,
  // and never rejects a document without saying why (the loader would drop it silently).
  it('never rejects without an issue and never throws', () => {
    const valid = base({
      options: [{ name: 'o', type: 'enum', values: ['a'], default: 'a' }],
      approval: { required: 1, from: ['group:x'] },
      steps: [{ name: 's', run: ['x', '${option.o}'], env: { A: 'b' }, timeout: '1s' }, { name: 'h', http: { url: 'https://x', headers: { A: 'b' } } }, { name: 'g', approval: { from: ['user:a'] } }],
      onFailure: [{ name: 'f', sleep: '1s' }],
    }) as Record<string, unknown>;
    expect(validateRunbook(valid).issues).toEqual([]);
    const junk: unknown[] = [undefined, null, 0, -1, 1.5, '', ' ', 'x', '${', true, [], [null], {}, { x: 1 }];
    const paths: Array<Array<string | number>> = [];
    const walk = (v: unknown, path: Array<string | number>): void => {
      if (path.length > 0) paths.push(path);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
    };
    walk(valid, []);
    let checked = 0;
    for (const path of paths) {
      for (const j of junk) {
        const copy = structuredClone(valid);
        let at: Record<string | number, unknown> = copy;
        for (const seg of path.slice(0, -1)) at = at[seg] as Record<string | number, unknown>;
        at[path[path.length - 1] as string | number] = j;
        const r = validateRunbook(copy);
        expect(r.runbook !== undefined || r.issues.length > 0, JSON.stringify({ path, j })).toBe(true);
        expect(r.runbook === undefined || r.issues.length === 0).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(500);
  });
});
