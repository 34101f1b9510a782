/**
 * The portal's only script, served at /static/live-output.js: on an execution page that is
 * still running, it follows the execution's event stream (GET /api/v1/executions/:id/events,
 * with the session cookie) and appends each host's output and state as they arrive. The page
 * is complete without it: everything stored is rendered by the server, and when the
 * execution ends the script reloads the page to show the final, server-rendered result.
 *
 * Plain ES2017 for any current browser, no build step; it only ever inserts text nodes.
 */
export const LIVE_OUTPUT_SCRIPT = `'use strict';
(function () {
  var root = document.querySelector('[data-live-events]');
  if (!root || typeof EventSource === 'undefined') return;
  var executionId = root.getAttribute('data-execution') || '';
  var status = document.querySelector('[data-live-status]');
  var enc = new TextEncoder();
  var dec = new TextDecoder();
  var SAFE = /^[A-Za-z0-9_-]+$/;
  var firstState = true;
  function say(text) { if (status) status.textContent = text; }
  function pick(selector) { return document.querySelector(selector); }
  function stepBlock(step) {
    if (!SAFE.test(step.id)) return null;
    var li = pick('[data-step-run="' + step.id + '"]');
    if (li) return li;
    var hostKey = step.agentId && SAFE.test(step.agentId) ? step.agentId : 'coordinator';
    var list = pick('[data-host-steps="' + hostKey + '"]');
    if (!list) return null;
    li = document.createElement('li');
    li.setAttribute('data-step-run', step.id);
    var name = document.createElement('strong');
    name.textContent = step.name;
    var state = document.createElement('span');
    state.setAttribute('data-step-state', '');
    li.appendChild(name);
    li.appendChild(document.createTextNode(' '));
    li.appendChild(state);
    list.appendChild(li);
    return li;
  }
  function output(li, stream) {
    var pre = li.querySelector('pre[data-stream="' + stream + '"]');
    if (!pre) {
      pre = document.createElement('pre');
      pre.setAttribute('data-stream', stream);
      pre.setAttribute('data-bytes', '0');
      pre.setAttribute('aria-label', stream);
      if (stream === 'stderr') pre.className = 'stderr';
      li.appendChild(pre);
    }
    return pre;
  }
  function append(pre, offset, text) {
    var have = Number(pre.getAttribute('data-bytes') || '0');
    var bytes = enc.encode(text);
    if (offset + bytes.length <= have) return;
    var add = offset < have ? dec.decode(bytes.slice(have - offset)) : text;
    pre.appendChild(document.createTextNode(add));
    pre.setAttribute('data-bytes', String(offset + bytes.length));
  }
  function refill(li, step, stream, stored) {
    var pre = output(li, stream);
    if (stored <= Number(pre.getAttribute('data-bytes') || '0')) return;
    var url = '/api/v1/executions/' + executionId + '/steps/' + step.id + '/output?stream=' + stream;
    fetch(url, { credentials: 'same-origin' }).then(function (r) {
      return r.ok ? r.arrayBuffer() : null;
    }).then(function (buf) {
      if (!buf || buf.byteLength <= Number(pre.getAttribute('data-bytes') || '0')) return;
      pre.textContent = dec.decode(buf);
      pre.setAttribute('data-bytes', String(buf.byteLength));
    }).catch(function () { /* the final reload shows it */ });
  }
  function setState(el, state, extra) {
    if (!el) return;
    el.textContent = String(state).replace(/_/g, ' ') + (extra || '');
    el.className = 'state state-' + state;
  }
  var es = new EventSource(root.getAttribute('data-live-events'));
  es.addEventListener('open', function () { say('Live: following this execution.'); });
  es.addEventListener('output', function (ev) {
    var o = JSON.parse(ev.data);
    var li = stepBlock({ id: o.stepRunId, agentId: o.agentId, name: '' });
    if (li) append(output(li, o.stream === 'stderr' ? 'stderr' : 'stdout'), o.offset, o.text);
  });
  es.addEventListener('state', function (ev) {
    var view = JSON.parse(ev.data);
    setState(pick('[data-execution-state]'), view.state);
    (view.nodes || []).forEach(function (n) {
      if (SAFE.test(n.agentId)) setState(pick('[data-node-state="' + n.agentId + '"]'), n.state);
    });
    (view.steps || []).forEach(function (s) {
      var li = stepBlock(s);
      if (!li) return;
      setState(li.querySelector('[data-step-state]'), s.state, s.exitCode === null ? '' : ' (exit ' + s.exitCode + ')');
      if (firstState) {
        refill(li, s, 'stdout', s.stdoutBytes);
        refill(li, s, 'stderr', s.stderrBytes);
      }
    });
    firstState = false;
  });
  es.addEventListener('end', function () {
    es.close();
    say('Finished: loading the result.');
    window.location.reload();
  });
  es.addEventListener('error', function () {
    say(es.readyState === EventSource.CLOSED ? 'Live output is unavailable: reload the page.' : 'Live output interrupted: reconnecting.');
  });
})();
`;
