/**
 * Label selectors: the one implementation used by runbooks, policy, the engine and the CLI.
 *
 * Grammar (Kubernetes-style):
 *   selector    := "" | "*" | requirement ("," requirement)*
 *   requirement := key ("=" | "==" | "!=") value
 *                | key ("in" | "notin") "(" value ("," value)* ")"
 *                | key            (label present)
 *                | "!" key        (label absent)
 * `!=` and `notin` also match agents that lack the label.
 */

export type RequirementOp = 'eq' | 'neq' | 'in' | 'notin' | 'exists' | 'notexists';

export interface Requirement {
  readonly key: string;
  readonly op: RequirementOp;
  readonly values: readonly string[];
}

export interface Selector {
  /** Empty means "every agent". */
  readonly requirements: readonly Requirement[];
}

export type Labels = Readonly<Record<string, string>>;

export class SelectorSyntaxError extends Error {
  /** 1-based column in the selector text. */
  readonly column: number;
  constructor(message: string, column: number) {
    super(message);
    this.name = 'SelectorSyntaxError';
    this.column = column;
  }
}

const KEY = /[A-Za-z0-9][A-Za-z0-9._/-]*/y;
const VALUE = /[A-Za-z0-9._:@/-]+/y;
const MAX_KEY = 253;
const MAX_VALUE = 253;

export const EVERYTHING: Selector = { requirements: [] };

export function parseSelector(text: string): Selector {
  const p = new Parser(text);
  return p.parse();
}

class Parser {
  private pos = 0;
  constructor(private readonly src: string) {}

  parse(): Selector {
    this.ws();
    if (this.pos === this.src.length) return EVERYTHING;
    if (this.src.slice(this.pos).trim() === '*') return EVERYTHING;
    const reqs: Requirement[] = [];
    for (;;) {
      reqs.push(this.requirement());
      this.ws();
      if (this.pos === this.src.length) break;
      this.expect(',');
      this.ws();
    }
    return { requirements: reqs };
  }

  private requirement(): Requirement {
    if (this.peek() === '!') {
      this.pos++;
      this.ws();
      return { key: this.key(), op: 'notexists', values: [] };
    }
    const key = this.key();
    this.ws();
    const c = this.peek();
    if (c === '=' || c === '!') {
      let op: RequirementOp;
      if (this.src.startsWith('==', this.pos)) {
        this.pos += 2;
        op = 'eq';
      } else if (this.src.startsWith('!=', this.pos)) {
        this.pos += 2;
        op = 'neq';
      } else if (c === '=') {
        this.pos += 1;
        op = 'eq';
      } else {
        throw this.error(`expected "!=" after key "${key}"`);
      }
      this.ws();
      return { key, op, values: [this.value()] };
    }
    const word = this.word();
    if (word === 'in' || word === 'notin') {
      this.ws();
      this.expect('(');
      const values: string[] = [];
      for (;;) {
        this.ws();
        values.push(this.value());
        this.ws();
        if (this.peek() === ')') {
          this.pos++;
          break;
        }
        this.expect(',');
      }
      return { key, op: word, values };
    }
    if (word !== '') {
      this.pos -= word.length;
      throw this.error(`unexpected "${word}" after key "${key}": expected =, !=, in or notin`);
    }
    return { key, op: 'exists', values: [] };
  }

  private word(): string {
    const m = /[a-z]+/y;
    m.lastIndex = this.pos;
    const r = m.exec(this.src);
    if (!r) return '';
    this.pos += r[0].length;
    return r[0];
  }

  private key(): string {
    KEY.lastIndex = this.pos;
    const m = KEY.exec(this.src);
    if (!m) throw this.error(this.pos === this.src.length ? 'expected a label key at end of selector' : `expected a label key, found "${this.src[this.pos]}"`);
    if (m[0].length > MAX_KEY) throw this.error(`label key longer than ${MAX_KEY} characters`);
    this.pos += m[0].length;
    return m[0];
  }

  private value(): string {
    VALUE.lastIndex = this.pos;
    const m = VALUE.exec(this.src);
    if (!m) throw this.error(this.pos === this.src.length ? 'expected a value at end of selector' : `expected a value, found "${this.src[this.pos]}"`);
    if (m[0].length > MAX_VALUE) throw this.error(`label value longer than ${MAX_VALUE} characters`);
    this.pos += m[0].length;
    return m[0];
  }

  private expect(ch: string): void {
    if (this.peek() !== ch) {
      const found = this.pos >= this.src.length ? 'end of selector' : `"${this.src[this.pos]}"`;
      throw this.error(`expected "${ch}", found ${found}`);
    }
    this.pos++;
  }

  private peek(): string | undefined {
    return this.src[this.pos];
  }

  private ws(): void {
    while (this.pos < this.src.length && (this.src[this.pos] === ' ' || this.src[this.pos] === '\t')) this.pos++;
  }

  private error(message: string): SelectorSyntaxError {
    return new SelectorSyntaxError(message, this.pos + 1);
  }
}

export function matchesRequirement(req: Requirement, labels: Labels): boolean {
  const has = Object.prototype.hasOwnProperty.call(labels, req.key);
  const v = has ? labels[req.key] : undefined;
  switch (req.op) {
    case 'eq':
      return has && v === req.values[0];
    case 'neq':
      return !has || v !== req.values[0];
    case 'in':
      return has && req.values.includes(v as string);
    case 'notin':
      return !has || !req.values.includes(v as string);
    case 'exists':
      return has;
    case 'notexists':
      return !has;
  }
}

export function matches(selector: Selector, labels: Labels): boolean {
  for (const r of selector.requirements) if (!matchesRequirement(r, labels)) return false;
  return true;
}

/** The selector matching what both match: how a run narrows a runbook's targets. */
export function intersect(a: Selector, b: Selector): Selector {
  return { requirements: [...a.requirements, ...b.requirements] };
}

export function formatSelector(selector: Selector): string {
  if (selector.requirements.length === 0) return '*';
  return selector.requirements
    .map((r) => {
      switch (r.op) {
        case 'eq':
          return `${r.key}=${r.values[0]}`;
        case 'neq':
          return `${r.key}!=${r.values[0]}`;
        case 'in':
          return `${r.key} in (${r.values.join(',')})`;
        case 'notin':
          return `${r.key} notin (${r.values.join(',')})`;
        case 'exists':
          return r.key;
        case 'notexists':
          return `!${r.key}`;
      }
    })
    .join(',');
}
