/** Logging in to the portal as a browser does (login form, CSRF field, same-origin post), for benchmarks that fetch pages. */

/** Returns the `Cookie` header value of a fresh portal session. */
export async function portalSession(base: string, user: string, password: string): Promise<string> {
  const form = await fetch(`${base}/login`);
  const nonce = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1];
  if (nonce === undefined) throw new Error(`GET ${base}/login: no login form (${form.status})`);
  const pre = form.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const res = await fetch(`${base}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: pre, origin: new URL(base).origin, 'sec-fetch-site': 'same-origin' },
    body: new URLSearchParams({ _csrf: nonce, user, password, next: '/' }).toString(),
  });
  const session = res.headers.getSetCookie().map((c) => c.split(';')[0]).find((c) => c?.startsWith('hr_session='));
  if (res.status !== 303 || session === undefined) throw new Error(`POST ${base}/login as ${user}: ${res.status}, no session`);
  return session;
}
