/**
 * GET/POST /login and POST /logout. The login form is protected like every other form: a
 * same-origin check, and (there being no session yet) a random token that must equal a
 * short-lived cookie. Wrong passwords are throttled per user name and per address and audited
 * (coordinator/auth/password-login.ts); the answer never says which of name or password was wrong.
 */
import { Hono, type Context } from 'hono';
import { getCookie, setCookie, deleteCookie } from 'hono/cookie';
import { CsrfField, Notice, Page, render } from '../layout/layout.js';
import { checkSameOrigin, CsrfRefusal, formFields, newLoginNonce, tokensEqual } from '../../auth/csrf.js';
import { clearSessionCookie, currentSession, safeNext, setSessionCookie } from '../../auth/session.js';
import { clientAddress, isHttps } from '../../auth/client-request.js';
import { pageHeaders, pageMiddleware } from '../page-middleware.js';
import type { PortalDeps, PortalEnv } from '../portal-env.js';

const NONCE_PLAIN = 'hr_login';
const NONCE_TLS = '__Host-hr_login';
const NONCE_PATTERN = /^[A-Za-z0-9_-]{32}$/;

interface LoginView {
  readonly nonce: string;
  readonly next: string;
  readonly user?: string;
  readonly error?: string;
  readonly notice?: string;
}

function LoginPage(p: LoginView) {
  return (
    <Page title="Log in">
      <div class="login">
        <h1>Log in to Handrail</h1>
        <Notice text={p.notice} />
        {p.error ? (
          <p class="alert" role="alert" id="login-error">
            {p.error}
          </p>
        ) : null}
        <form method="post" action="/login">
          <CsrfField token={p.nonce} />
          <input type="hidden" name="next" value={p.next} />
          <div class="field">
            <label for="user">User name</label>
            <input id="user" name="user" autocomplete="username" required autofocus value={p.user ?? ''} aria-describedby={p.error ? 'login-error' : undefined} />
          </div>
          <div class="field">
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required />
          </div>
          <button type="submit">Log in</button>
        </form>
        <p class="hint">Your browser must accept cookies from this site to stay logged in.</p>
      </div>
    </Page>
  );
}

export function loginRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { post } = pageMiddleware(d);
  const nonceName = (c: Context): string => (isHttps(c, d.trust) ? NONCE_TLS : NONCE_PLAIN);
  /** The pre-login token: the browser's current one if it has one, else a new one in a cookie. */
  const nonceFor = (c: Context): string => {
    const have = getCookie(c, nonceName(c));
    if (have && NONCE_PATTERN.test(have)) return have;
    const fresh = newLoginNonce();
    setCookie(c, nonceName(c), fresh, { httpOnly: true, sameSite: 'Strict', path: '/', secure: isHttps(c, d.trust), maxAge: 3600 });
    return fresh;
  };
  const show = (c: Context, view: Omit<LoginView, 'nonce'>, status: 200 | 401 | 403 | 429 = 200): Promise<Response> => render(c, <LoginPage {...view} nonce={nonceFor(c)} />, status);

  app.get('/login', pageHeaders, async (c) => {
    const next = safeNext(c.req.query('next'));
    if (await currentSession(c, { sessions: d.sessions, users: d.users, now: d.now, trust: d.trust })) return c.redirect(next, 303);
    return show(c, { next, ...(c.req.query('bye') !== undefined ? { notice: 'You are logged out.' } : {}) });
  });

  app.post('/login', pageHeaders, async (c) => {
    const origin = checkSameOrigin(c, d.trust);
    if (!origin.ok) throw new CsrfRefusal(origin.reason);
    const form = await formFields(c);
    const next = safeNext(form['next']);
    const user = (form['user'] ?? '').slice(0, 64);
    if (!tokensEqual(form['_csrf'], getCookie(c, nonceName(c)))) {
      return show(c, { next, user, error: 'The login form had expired. Please log in again.' }, 403);
    }
    const result = await d.logins.attempt(user, form['password'] ?? '', { remote: clientAddress(c, d.trust), userAgent: c.req.header('user-agent') ?? '' }, d.now());
    if (result.ok) {
      deleteCookie(c, nonceName(c), { path: '/', secure: isHttps(c, d.trust) });
      setSessionCookie(c, d.trust, result.secret, result.session, d.now());
      return c.redirect(next, 303);
    }
    if (result.reason === 'throttled') {
      const minutes = Math.max(1, Math.ceil(result.retryAfterMs / 60_000));
      c.header('retry-after', String(Math.ceil(result.retryAfterMs / 1000)));
      return show(c, { next, user, error: `Too many failed logins for this user or from this address. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.` }, 429);
    }
    return show(c, { next, user, error: 'Wrong user name or password.' }, 401);
  });

  app.post('/logout', post, async (c) => {
    await d.logins.logout(c.get('session'), d.now());
    clearSessionCookie(c, d.trust);
    return c.redirect('/login?bye', 303);
  });
  return app;
}
