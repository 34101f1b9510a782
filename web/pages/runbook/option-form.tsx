/**
 * The run form generated from a runbook's declared options: one labelled field per option,
 * typed by the option's type, with its constraints said in words beside it and its error (if
 * the last submission had one) right under it. The browser's own validation is off
 * (`novalidate`): the server checks with the runbook's validation (coordinator/runbooks/
 * options.ts, as the API does) and shows every problem at once, values kept — except secrets,
 * which are never sent back to the browser.
 */
import type { OptionDef } from '../../../coordinator/runbooks/model.js';
import { DEFAULT_OPTION_MAX_LENGTH } from '../../../coordinator/runbooks/model.js';
import { CsrfField } from '../layout/layout.js';

/** Form field name of an option (option names are letters, digits, `_` and `-`). */
export const optionField = (name: string): string => `opt.${name}`;

export interface RunFormState {
  /** What each field shows: the user's last input, else the default (never a secret). */
  readonly values: Readonly<Record<string, string>>;
  /** Problems by option name. */
  readonly errors: Readonly<Record<string, string>>;
  readonly reason: string;
  /** A problem with the run as a whole (policy, no hosts). */
  readonly formError?: string;
}

/** The option values a submitted form gives: only declared options, an empty field being an option not given. */
export function optionsFromForm(defs: readonly OptionDef[], form: Readonly<Record<string, string>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const def of defs) {
    const v = form[optionField(def.name)];
    if (v !== undefined && v !== '') out[def.name] = v;
  }
  return out;
}

export function initialFormState(defs: readonly OptionDef[], prefill: Readonly<Record<string, string>> = {}): RunFormState {
  const values: Record<string, string> = {};
  for (const d of defs) {
    if (d.type === 'secret') continue;
    const v = prefill[d.name] ?? d.default;
    if (v !== undefined) values[d.name] = v;
  }
  return { values, errors: {}, reason: '' };
}

function constraints(d: OptionDef): string {
  const parts: string[] = [];
  switch (d.type) {
    case 'integer':
      parts.push(d.min !== undefined && d.max !== undefined ? `a whole number from ${d.min} to ${d.max}` : d.min !== undefined ? `a whole number, at least ${d.min}` : d.max !== undefined ? `a whole number, at most ${d.max}` : 'a whole number');
      break;
    case 'boolean':
      parts.push('true or false');
      break;
    case 'enum':
      parts.push(`one of ${(d.values ?? []).join(', ')}`);
      break;
    case 'string':
    case 'secret': {
      if (d.type === 'secret') parts.push('secret: masked in records and pages');
      const max = d.max ?? DEFAULT_OPTION_MAX_LENGTH;
      parts.push(d.min !== undefined ? `${d.min} to ${max} characters` : `at most ${max} characters`);
      if (d.pattern !== undefined) parts.push(`must match ${d.pattern}`);
      break;
    }
  }
  if (d.default !== undefined && d.type !== 'secret') parts.push(`default ${d.default}`);
  return parts.join('; ');
}

function OptionField(p: { def: OptionDef; value: string | undefined; error: string | undefined }) {
  const d = p.def;
  const id = `opt-${d.name}`;
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const described = [hintId, ...(p.error ? [errorId] : [])].join(' ');
  const common = { id, name: optionField(d.name), 'aria-describedby': described, 'aria-invalid': p.error ? 'true' : undefined, required: d.required };
  let control;
  if (d.type === 'enum' || d.type === 'boolean') {
    const choices = d.type === 'boolean' ? ['true', 'false'] : [...(d.values ?? [])];
    control = (
      <select {...common}>
        <option value="">{d.default !== undefined ? `(default: ${d.default})` : d.required ? '(choose one)' : '(none)'}</option>
        {choices.map((v) => (
          <option value={v} selected={p.value === v}>
            {v}
          </option>
        ))}
      </select>
    );
  } else if (d.type === 'secret') {
    control = <input {...common} type="password" autocomplete="new-password" value="" />;
  } else {
    control = <input {...common} type="text" inputmode={d.type === 'integer' ? 'numeric' : undefined} value={p.value ?? ''} spellcheck={false} />;
  }
  return (
    <div class={p.error ? 'field invalid' : 'field'} data-option={d.name}>
      <label for={id}>
        {d.label ?? d.name}
        {d.required ? ' (required)' : ''}
      </label>
      <p class="hint" id={hintId}>
        {d.description ? `${d.description}. ` : ''}
        {constraints(d)}
      </p>
      {control}
      {p.error ? (
        <p class="error" id={errorId}>
          {d.label ?? d.name} {p.error}
          {d.type === 'secret' ? ' (enter it again)' : ''}
        </p>
      ) : null}
    </div>
  );
}

export function RunForm(p: { runbookId: string; defs: readonly OptionDef[]; state: RunFormState; csrfToken: string; approval: { readonly required: number; readonly from: readonly string[] } | null }) {
  const errorCount = Object.keys(p.state.errors).length;
  return (
    <form method="post" action={`/runbooks/${encodeURIComponent(p.runbookId)}/run`} novalidate aria-labelledby="run-heading">
      <CsrfField token={p.csrfToken} />
      {errorCount > 0 ? (
        <p class="alert" role="alert" id="form-errors">
          {errorCount === 1 ? 'One option needs a change' : `${errorCount} options need a change`}: see below.
        </p>
      ) : null}
      {p.state.formError ? (
        <p class="alert" role="alert" id="run-error">
          {p.state.formError}
        </p>
      ) : null}
      {p.defs.length > 0 ? (
        <fieldset>
          <legend>Options</legend>
          {p.defs.map((def) => (
            <OptionField def={def} value={p.state.values[def.name]} error={p.state.errors[def.name]} />
          ))}
        </fieldset>
      ) : (
        <p class="muted">This runbook takes no options.</p>
      )}
      <div class="field">
        <label for="reason">Reason (optional)</label>
        <p class="hint" id="reason-hint">
          Why you are running it, e.g. a ticket number; shown in the history and the audit trail.
        </p>
        <input id="reason" name="reason" maxlength={500} value={p.state.reason} aria-describedby="reason-hint" />
      </div>
      {p.approval ? (
        <p class="notice" data-testid="needs-approval">
          This runbook needs approval before it runs: {p.approval.required} approval{p.approval.required === 1 ? '' : 's'} from {p.approval.from.join(', ') || 'anyone allowed to approve it'}. Run
          sends the request; nothing runs until it is approved.
        </p>
      ) : null}
      <button type="submit">{p.approval ? 'Request approval to run' : 'Run'}</button>
    </form>
  );
}
