/**
 * Validation issues from the pure document validators (runbooks, policies, options). A path
 * points into the plain value that was validated; the YAML loader turns it into file:line:col.
 */
export type Path = readonly (string | number)[];

export interface ValidationIssue {
  readonly path: Path;
  readonly message: string;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? p : `.${p}`;
  return out === '' ? '(document)' : out;
}
