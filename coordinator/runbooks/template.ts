/**
 * Templates in runbook steps: `${option.NAME}`, `${host.name}`, `${host.id}`,
 * `${host.labels.KEY}`, `${execution.id}`; `$${` is a literal `${`. A template is expanded
 * inside ONE argv element or env value: whatever a value contains (spaces, `;`, `$(…)`,
 * backticks, newlines) it stays that one element, and no shell ever parses it. Script bodies
 * take no templates (options reach them as $HANDRAIL_OPT_NAME environment variables).
 */

export type TemplateRef =
  | { readonly kind: 'option'; readonly name: string }
  | { readonly kind: 'host'; readonly field: 'name' | 'id' }
  | { readonly kind: 'label'; readonly key: string }
  | { readonly kind: 'execution' };

export type TemplatePart = string | TemplateRef;

export interface TemplateContext {
  readonly options: Readonly<Record<string, string>>;
  readonly host: { readonly id: string; readonly name: string; readonly labels: Readonly<Record<string, string>> };
  readonly executionId: string;
}

const REF = /\$\$\{|\$\{([^}]*)\}/g;

export function parseTemplate(text: string): { parts: TemplatePart[] } | { error: string } {
  const parts: TemplatePart[] = [];
  let last = 0;
  let literal = '';
  for (const m of text.matchAll(REF)) {
    literal += text.slice(last, m.index);
    last = (m.index as number) + m[0].length;
    if (m[0] === '$${') {
      literal += '${';
      continue;
    }
    const ref = parseRef((m[1] as string).trim());
    if ('error' in ref) return ref;
    if (literal) parts.push(literal);
    literal = '';
    parts.push(ref.ref);
  }
  literal += text.slice(last);
  if (literal) parts.push(literal);
  return { parts };
}

function parseRef(body: string): { ref: TemplateRef } | { error: string } {
  let m: RegExpExecArray | null;
  if ((m = /^option\.([A-Za-z_][A-Za-z0-9_-]*)$/.exec(body))) return { ref: { kind: 'option', name: m[1] as string } };
  if (body === 'host.name') return { ref: { kind: 'host', field: 'name' } };
  if (body === 'host.id') return { ref: { kind: 'host', field: 'id' } };
  if ((m = /^host\.labels\.([A-Za-z0-9][A-Za-z0-9._/-]*)$/.exec(body))) return { ref: { kind: 'label', key: m[1] as string } };
  if (body === 'execution.id') return { ref: { kind: 'execution' } };
  return { error: `unknown template variable "\${${body.slice(0, 60)}}": use \${option.NAME}, \${host.name}, \${host.id}, \${host.labels.KEY} or \${execution.id} (write $\${ for a literal \${)` };
}

/** Options a template reads. */
export function optionRefs(parts: readonly TemplatePart[]): string[] {
  return parts.filter((p): p is { kind: 'option'; name: string } => typeof p !== 'string' && p.kind === 'option').map((p) => p.name);
}

export function render(parts: readonly TemplatePart[], ctx: TemplateContext, encode: (value: string) => string = (v) => v): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    switch (p.kind) {
      case 'option':
        out += encode(ctx.options[p.name] ?? '');
        break;
      case 'host':
        out += encode(p.field === 'name' ? ctx.host.name : ctx.host.id);
        break;
      case 'label':
        out += encode(ctx.host.labels[p.key] ?? '');
        break;
      case 'execution':
        out += encode(ctx.executionId);
        break;
    }
  }
  return out;
}

/** The environment variable an option reaches agent steps as: HANDRAIL_OPT_<NAME>. */
export function optionEnvName(name: string): string {
  return `HANDRAIL_OPT_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}
