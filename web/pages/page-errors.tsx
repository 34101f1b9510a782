/**
 * Errors on portal pages, as pages: not found (also for what policy hides), refused, a form
 * from another site or without its token, and anything unexpected (logged, never shown).
 */
import type { Context, ErrorHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Logger } from 'pino';
import { HandrailError, type ErrorKind } from '../../core/errors.js';
import { CsrfRefusal } from '../auth/csrf.js';
import { Page, render } from './layout/layout.js';
import { viewerOf, type PortalEnv } from './portal-env.js';

const STATUS: Record<ErrorKind, ContentfulStatusCode> = {
  invalid_argument: 400,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  unauthenticated: 401,
  failed_precondition: 409,
  resource_exhausted: 429,
  unavailable: 503,
  cancelled: 409,
  deadline_exceeded: 504,
  internal: 500,
};

/** The HTTP status of an error kind (the same mapping as web/errors.ts gives the API). */
export function statusOf(kind: ErrorKind): ContentfulStatusCode {
  return STATUS[kind];
}

const TITLES: Partial<Record<ContentfulStatusCode, string>> = { 400: 'That did not work', 403: 'Not allowed', 404: 'Not found', 409: 'Not possible now', 503: 'Try again in a moment' };

function viewer(c: Context<PortalEnv>) {
  const user = c.get('user') as PortalEnv['Variables']['user'] | undefined;
  return user ? viewerOf({ user, csrfToken: c.get('csrfToken'), isAdmin: c.get('isAdmin') }) : undefined;
}

export function portalErrorHandler(log: Logger): ErrorHandler<PortalEnv> {
  return (e, c) => {
    if (e instanceof CsrfRefusal) {
      log.warn({ event: 'portal.csrf_refused', path: c.req.path, reason: e.reason }, 'form post refused');
      return render(
        c,
        <Page title="Form refused" viewer={viewer(c)}>
          <h1>Form refused</h1>
          <p class="alert" role="alert">
            This form was not sent from a current page of this site, so nothing was done. Go back, reload the page and try again.
          </p>
        </Page>,
        403,
      );
    }
    if (e instanceof HandrailError && e.kind !== 'internal') {
      const status = statusOf(e.kind);
      const title = TITLES[status] ?? 'That did not work';
      return render(
        c,
        <Page title={title} viewer={viewer(c)}>
          <h1>{title}</h1>
          <p class="alert" role="alert">
            {e.message}
          </p>
          <p>
            <a href="/runbooks">Back to the runbooks</a>
          </p>
        </Page>,
        status,
      );
    }
    log.error({ event: 'portal.error', path: c.req.path, err: e }, 'portal page failed');
    return render(
      c,
      <Page title="Something went wrong" viewer={viewer(c)}>
        <h1>Something went wrong</h1>
        <p class="alert" role="alert">
          The page could not be shown. The error is in the coordinator's log; try again, or tell your Handrail admins.
        </p>
      </Page>,
      500,
    );
  };
}
