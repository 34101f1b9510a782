/**
 * The portal's only script, served at /static/live-output.js: on an execution page that is
 * still running, it follows the execution's lossless event stream (GET
 * /api/v1/executions/:id/events, with the session cookie: web/api/execution-events.ts). The
 * stream replays every stored output chunk in order, then live ones, each with an `id:`; a
 * browser that loses the connection reconnects by itself with `Last-Event-ID` and continues
 * after the last chunk it had. Each chunk carries its byte offset in its stream, so what the
 * server already rendered (the `data-bytes` of each output block) is never shown twice.
 * `state` events update the execution's, each host's and each step's state; `end` reloads the
 * page to show the final, server-rendered result. The page is complete without the script.
 *
 * Plain ES2017 for any current browser, no build step; it only ever inserts text nodes.
 */
import { STATE_LOOKS } from '../pages/layout/states.js';

export const LIVE_OUTPUT_SCRIPT = `'use strict';
(function () {
  var root = document.querySelector('[data-live-events]');
  if (!root || typeof EventSource === 'undefined') return;
  var status = document.querySelector('[data-live-status]');
  var LOOKS = ${JSON.stringify(STATE_LOOKS)};
  var enc = new TextEncoder();
  var SAFE = /^[A-Za-z0-9_-]+$/;
  /** One streaming decoder per step run and stream: a character split across chunks stays whole. */
  var decoders = {};
  function say(text) { if (status) status.textContent = text; }
  function pick(selector) { return document.querySelector(selector); }
  function stepBlock(step) {
    if (!SAFE.test(step.id)) return null;
    var li = pick('[data-step-run="' + step.id + '"]');
    if (!li) {
      var hostKey = step.agentId && SAFE.test(step.agentId) ? step.agentId : 'coordinator';
      var list = pick('[data-host-steps="' + hostKey + '"]');
      if (!list) return null;
      li = document.createElement('li');
      li.setAttribute('data-step-run', step.id);
      var strong = document.createElement('strong');
      var state = document.createElement('span');
      state.setAttribute('data-step-state', '');
      li.appendChild(strong);
      li.appendChild(document.createTextNode(' '));
      li.appendChild(state);
      list.appendChild(li);
    }
    var name = li.querySelector('strong');
    if (name && !name.textContent && step.name) name.textContent = step.name + (step.attempt > 1 ? ' (attempt ' + step.attempt + ')' : '');
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
  function bytesOf(o) {
    if (o.encoding !== 'base64') return enc.encode(String(o.data));
    var bin = atob(String(o.data));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function append(pre, key, offset, bytes) {
    // A block the server cut short ends with a link to the whole output: nothing is added to it.
    if (pre.hasAttribute('data-cut')) return;
    var have = Number(pre.getAttribute('data-bytes') || '0');
    if (offset + bytes.length <= have) return;
    var fresh = offset < have ? bytes.subarray(have - offset) : bytes;
    var decoder = decoders[key] || (decoders[key] = new TextDecoder());
    var text = decoder.decode(fresh, { stream: true });
    if (text) pre.appendChild(document.createTextNode(text));
    pre.setAttribute('data-bytes', String(offset + bytes.length));
  }
  function setState(el, state, extra) {
    if (!el) return;
    var s = String(state);
    var look = Object.prototype.hasOwnProperty.call(LOOKS, s) ? LOOKS[s] : null;
    el.textContent = s.replace(/_/g, ' ') + (extra || '');
    el.className = 'state state-' + (/^[a-z_]{1,32}$/.test(s) ? s : 'unknown') + (look ? ' tone-' + look.tone : '');
    if (look) el.title = look.means; else el.removeAttribute('title');
  }
  var es = new EventSource(root.getAttribute('data-live-events'));
  es.addEventListener('open', function () { say('Live: following this execution.'); });
  es.addEventListener('output', function (ev) {
    var o = JSON.parse(ev.data);
    var stream = o.stream === 'stderr' ? 'stderr' : 'stdout';
    var li = stepBlock({ id: String(o.stepRunId), agentId: o.agentId, name: '' });
    if (li) append(output(li, stream), o.stepRunId + ':' + stream, Number(o.offset), bytesOf(o));
  });
  es.addEventListener('state', function (ev) {
    var view = JSON.parse(ev.data);
    setState(pick('[data-execution-state]'), view.state);
    (view.nodes || []).forEach(function (n) {
      if (SAFE.test(n.agentId)) setState(pick('[data-node-state="' + n.agentId + '"]'), n.state);
    });
    (view.steps || []).forEach(function (s) {
      var li = stepBlock(s);
      if (li) setState(li.querySelector('[data-step-state]'), s.state, s.exitCode === null ? '' : ' (exit ' + s.exitCode + ')');
    });
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
