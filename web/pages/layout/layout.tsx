/**
 * The frame of every portal page: document head, skip link, navigation, who is logged in
 * (with the logout form), and the main region. Also the shared small pieces: times, states,
 * the hidden CSRF field, and rendering a page with its doctype.
 */
import type { Child } from 'hono/jsx';
import type { JSX } from 'hono/jsx/jsx-runtime';
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { assetUrl } from '../../static/assets.js';
import { CSRF_FIELD } from '../../auth/csrf.js';
import { stateClass, stateLabel, stateLook } from './states.js';

export type Section = 'runbooks' | 'executions' | 'approvals' | 'hosts' | 'toil' | 'audit' | 'notifications' | 'webhooks';

export interface Viewer {
  readonly name: string;
  readonly csrfToken: string;
  /** Policy gives them the admin action: the admin pages are in their navigation. */
  readonly admin?: boolean;
}

export interface PageProps {
  readonly title: string;
  readonly viewer?: Viewer | undefined;
  readonly section?: Section;
  /** An execution page that follows its live event stream. */
  readonly live?: { readonly eventsUrl: string; readonly executionId: string } | undefined;
  readonly children?: Child;
}

const NAV: ReadonlyArray<{ section: Section; href: string; label: string; admin?: true }> = [
  { section: 'runbooks', href: '/runbooks', label: 'Runbooks' },
  { section: 'executions', href: '/executions', label: 'History' },
  { section: 'approvals', href: '/approvals', label: 'Approvals' },
  { section: 'hosts', href: '/hosts', label: 'Hosts' },
  { section: 'toil', href: '/toil', label: 'Toil' },
  { section: 'audit', href: '/audit', label: 'Audit trail' },
  { section: 'notifications', href: '/admin/notifications', label: 'Notifications', admin: true },
  { section: 'webhooks', href: '/admin/webhooks', label: 'Webhooks', admin: true },
];

export function CsrfField(p: { token: string }) {
  return <input type="hidden" name={CSRF_FIELD} value={p.token} />;
}

export function Page(p: PageProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{`${p.title} · Handrail`}</title>
        <link rel="stylesheet" href={assetUrl('/static/portal.css')} />
        {p.live ? <script src={assetUrl('/static/live-output.js')} defer></script> : null}
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/">
            Handrail
          </a>
          {p.viewer ? (
            <>
              <nav aria-label="Main">
                {NAV.filter((n) => !n.admin || p.viewer?.admin === true).map((n) => (
                  <a href={n.href} aria-current={p.section === n.section ? 'page' : undefined}>
                    {n.label}
                  </a>
                ))}
              </nav>
              <form class="who" method="post" action="/logout">
                <CsrfField token={p.viewer.csrfToken} />
                <span>
                  Logged in as <strong data-testid="viewer">{p.viewer.name}</strong>
                </span>
                <button type="submit">Log out</button>
              </form>
            </>
          ) : null}
        </header>
        <main id="main" tabindex={-1} data-live-events={p.live?.eventsUrl} data-execution={p.live?.executionId}>
          {p.children}
        </main>
      </body>
    </html>
  );
}

/** What the last action did (a redirect's ?notice=…), announced politely to screen readers. */
export function Notice(p: { text: string | undefined }) {
  return p.text ? (
    <p class="info" role="status">
      {p.text}
    </p>
  ) : null;
}

export function Time(p: { iso: string | null; empty?: string }) {
  if (p.iso === null) return <span class="muted">{p.empty ?? '—'}</span>;
  return <time datetime={p.iso}>{p.iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>;
}

export function StateBadge(p: { state: string; attrs?: Record<string, string> }) {
  return (
    <span class={stateClass(p.state)} title={stateLook(p.state)?.means} {...(p.attrs ?? {})}>
      {stateLabel(p.state)}
    </span>
  );
}

/** Milliseconds between two ISO times, said briefly ("1.2 s", "3 min 4 s"); empty when unknown. */
export function duration(from: string | null, to: string | null): string {
  if (!from || !to) return '';
  return millis(Date.parse(to) - Date.parse(from));
}

/** A span of milliseconds said briefly ("1.2 s", "3 min 4 s"); empty when not a span. */
export function millis(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** Renders a page element as a complete HTML document. */
export async function render(c: Context, page: JSX.Element, status: ContentfulStatusCode = 200): Promise<Response> {
  const body = await page;
  return c.html(`<!DOCTYPE html>${body.toString()}`, status);
}
