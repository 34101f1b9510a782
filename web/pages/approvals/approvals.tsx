/**
 * GET /approvals — the approvals inbox: executions waiting for an approval this user may give
 * (the runbook's approvers and the policy's approve action both say so; nobody approves their
 * own request), each with its full context: who asked, the runbook, options, targets, reason,
 * who has approved so far, and the policy rule that lets this user decide.
 * POST /approvals/:id — approve or deny, with a comment; the requester sees the decision on
 * the execution page.
 */
import { Hono } from 'hono';
import type { User } from '../../../coordinator/auth/user-store.js';
import type { AwaitingApproval } from '../../../coordinator/store/execution-queries.js';
import { approvalInbox } from '../../../coordinator/engine/approval-inbox.js';
import { invalidArgument, notFound } from '../../../core/errors.js';
import { CsrfField, Notice, Page, render, Time } from '../layout/layout.js';
import { pageMiddleware } from '../page-middleware.js';
import { viewerOf, type PortalDeps, type PortalEnv } from '../portal-env.js';

export interface InboxItem {
  readonly waiting: AwaitingApproval;
  readonly title: string;
  /** The `<policy>/<rule>` that allows this user to approve it. */
  readonly rule: string | null;
  readonly canView: boolean;
}

/** What `user` may decide now: the API's inbox (coordinator/engine/approval-inbox.ts), with what the page shows. */
async function inboxFor(d: PortalDeps, user: User): Promise<InboxItem[]> {
  const out: InboxItem[] = [];
  for (const w of await approvalInbox(d.reader, d.access, user)) {
    const meta = w.runbookId === null ? undefined : d.catalog.get(w.runbookId)?.runbook.metadata;
    // The rule is only shown; whether this user may decide was settled by the inbox.
    const rule = meta ? d.authz.decide(user, 'approve', { id: meta.id, tags: meta.tags, owner: meta.owner }).rule : null;
    out.push({ waiting: w, title: meta?.title ?? w.runbookId ?? 'execution', rule, canView: await d.access.canView(user, { kind: 'runbook', runbookId: w.runbookId, requestedBy: w.requestedBy }) });
  }
  return out;
}

const approvedBy = (w: AwaitingApproval): string[] => w.decided.filter((x) => x.decision === 'approve').map((x) => x.approver);

const NOTICES: Readonly<Record<string, string>> = { approve: 'Approved.', deny: 'Denied: the execution is canceled.' };

function InboxPage(p: { items: readonly InboxItem[]; csrfToken: string; notice: string | undefined }) {
  return (
    <>
      <h1>Approvals waiting for you</h1>
      <Notice text={p.notice} />
      {p.items.length === 0 ? <p>Nothing is waiting for your approval.</p> : null}
      <ul class="cards" data-testid="approvals">
        {p.items.map((i) => {
          const w = i.waiting;
          const id = w.executionId;
          return (
            <li data-approval={id}>
              <h2>{i.canView ? <a href={`/executions/${encodeURIComponent(id)}`}>{i.title}</a> : i.title}</h2>
              <dl class="facts">
                <dt>Requested by</dt>
                <dd>{w.requestedBy}</dd>
                <dt>Requested</dt>
                <dd>
                  <Time iso={w.createdAt} />
                </dd>
                <dt>Targets</dt>
                <dd>
                  <code>{w.targets}</code>
                </dd>
                {w.reason ? (
                  <>
                    <dt>Reason</dt>
                    <dd>{w.reason}</dd>
                  </>
                ) : null}
                <dt>Options</dt>
                <dd>
                  {Object.keys(w.options).length === 0
                    ? 'none'
                    : Object.entries(w.options).map(([k, v]) => (
                        <code>
                          {k}={typeof v === 'string' ? v : JSON.stringify(v)}{' '}
                        </code>
                      ))}
                </dd>
                <dt>Needs</dt>
                <dd>
                  {w.required} approval{w.required === 1 ? '' : 's'} from {w.from.join(', ') || 'anyone allowed'}
                  {approvedBy(w).length > 0 ? `; approved so far by ${approvedBy(w).join(', ')}` : ''}
                  {w.gate >= 0 && w.message ? ` (${w.message})` : ''}
                </dd>
                <dt>You may decide by</dt>
                <dd>
                  <code>{i.rule ?? 'default'}</code>
                </dd>
              </dl>
              <form method="post" action={`/approvals/${encodeURIComponent(id)}`}>
                <CsrfField token={p.csrfToken} />
                <div class="field">
                  <label for={`comment-${id}`}>Comment</label>
                  <input id={`comment-${id}`} name="comment" maxlength={2000} />
                </div>
                <button type="submit" name="decision" value="approve">
                  Approve
                </button>{' '}
                <button type="submit" name="decision" value="deny" class="danger">
                  Deny
                </button>
              </form>
            </li>
          );
        })}
      </ul>
    </>
  );
}

export function approvalRoutes(d: PortalDeps): Hono<PortalEnv> {
  const app = new Hono<PortalEnv>();
  const { page, post } = pageMiddleware(d);
  app.get('/approvals', page, async (c) => {
    const items = await inboxFor(d, c.get('user'));
    return render(
      c,
      <Page title="Approvals" viewer={viewerOf(c.var)} section="approvals">
        <InboxPage items={items} csrfToken={c.get('csrfToken')} notice={NOTICES[c.req.query('notice') ?? '']} />
      </Page>,
    );
  });
  app.post('/approvals/:id', post, async (c) => {
    const user = c.get('user');
    const id = c.req.param('id');
    // Only what is in this user's inbox can be decided here; anything else does not exist for them.
    const item = (await inboxFor(d, user)).find((i) => i.waiting.executionId === id);
    if (!item) throw notFound(`no approval waiting for you on ${id.slice(0, 80)}`);
    const form = c.get('form');
    const decision = form['decision'];
    if (decision !== 'approve' && decision !== 'deny') throw invalidArgument('choose Approve or Deny');
    await d.executions.decide(id, user, decision, (form['comment'] ?? '').slice(0, 2000));
    return c.redirect(item.canView ? `/executions/${encodeURIComponent(id)}?notice=${decision}` : `/approvals?notice=${decision}`, 303);
  });
  return app;
}
