/**
 * A value the coordinator will never show again (an install line with its token, a new
 * signing secret): in a read-only text area, easy to select and copy, with the warning said
 * before it. Pages that show one are `no-store` (page-middleware.ts), and the value is never
 * logged or written anywhere but this response.
 */
import type { Child } from 'hono/jsx';
export function ShownOnce(p: { id: string; label: string; value: string; rows?: number; children?: Child }) {
  return (
    <div class="info shown-once" role="status" data-testid={p.id}>
      <p>
        <strong>Copy it now: it is shown only this once.</strong> {p.children ?? null}
      </p>
      <label for={p.id}>{p.label}</label>
      <textarea id={p.id} class="copy" readonly rows={p.rows ?? 3} spellcheck={false} autocomplete="off">
        {p.value}
      </textarea>
    </div>
  );
}
