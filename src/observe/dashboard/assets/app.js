// persistent-task-status dashboard client: plain browser JavaScript, no build
// step, no framework. Each page reads its view once from /api/ and then
// follows it over Server-Sent Events (/api/events). Text from the database is
// only ever set with textContent, never parsed as HTML.
(function () {
  'use strict';
  var app = document.getElementById('app');
  var banner = document.getElementById('banner');
  var base = app.dataset.base || '';
  var readOnly = app.dataset.readOnly === 'true';
  var csrf = (document.querySelector('meta[name="pts-csrf"]') || {}).content || '';
  var SVG = 'http://www.w3.org/2000/svg';

  function el(tag, attrs) {
    var node = document.createElement(tag);
    for (var k in attrs || {}) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = String(v);
      else if (k === 'onclick') node.addEventListener('click', v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (var i = 2; i < arguments.length; i++) append(node, arguments[i]);
    return node;
  }
  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach(function (c) { append(node, c); });
    else node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  function svg(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    for (var k in attrs) node.setAttribute(k, String(attrs[k]));
    return node;
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return '–';
    var s = Math.round(ms / 1000);
    if (s < 60) return s + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + (s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }
  function time(iso) { return iso ? new Date(iso).toLocaleString() : '–'; }
  function bar(percent) {
    var fill = el('div', { class: 'fill' });
    // Set through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    fill.style.width = Math.max(0, Math.min(100, percent)) + '%';
    return el('div', { class: 'bar', 'data-percent': percent, title: percent + ' %' }, fill);
  }
  function badge(status) { return el('span', { class: 'badge s-' + status, text: status }); }

  function showBanner(message) { banner.hidden = false; banner.textContent = message; }
  function hideBanner() { banner.hidden = true; banner.textContent = ''; }

  function getJson(path) {
    return fetch(base + path, { headers: { accept: 'application/json' }, credentials: 'same-origin' }).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) { var e = new Error(body.error || res.statusText); e.status = res.status; throw e; }
        return body;
      });
    });
  }
  function post(path) {
    return fetch(base + path, { method: 'POST', credentials: 'same-origin', headers: { 'x-csrf-token': csrf, 'content-type': 'application/json' }, body: '{}' })
      .then(function (res) { return res.json().catch(function () { return {}; }).then(function (body) {
        if (!res.ok) throw new Error(body.error || res.statusText);
        return body;
      }); });
  }

  // Follows a view: first read, then the live stream. The banner shows while
  // the database is unreachable and goes with the next good read.
  function follow(apiPath, eventsQuery, render) {
    function fail(e) {
      if (e.status === 404) { renderNotFound(e.message); return; }
      showBanner('Database unavailable: ' + e.message + ' (retrying)');
    }
    getJson(apiPath).then(function (v) { hideBanner(); render(v); }, fail);
    var source = new EventSource(base + '/api/events?' + eventsQuery);
    source.addEventListener('update', function (ev) { hideBanner(); render(JSON.parse(ev.data)); });
    source.addEventListener('outage', function (ev) {
      var d = JSON.parse(ev.data);
      if (d.status === 404) renderNotFound(d.message); else showBanner('Database unavailable: ' + d.message + ' (retrying)');
    });
    source.onerror = function () { showBanner('Connection to the dashboard lost (retrying)'); };
    source.onopen = function () { if (banner.textContent.indexOf('Connection') === 0) hideBanner(); };
    window.addEventListener('pagehide', function () { source.close(); });
  }
  function renderNotFound(message) {
    app.replaceChildren(el('section', { class: 'error', 'data-status': 404 }, el('h1', { text: '404 Not found' }), el('p', { text: message })));
  }

  // ---- Containers ------------------------------------------------------------
  function listPage() {
    var params = new URLSearchParams(location.search);
    var form = el('form', { class: 'filters', method: 'get', action: base + '/' },
      el('label', {}, 'Status ',
        el('select', { name: 'status', 'data-testid': 'status-filter' },
          ['', 'running', 'succeeded', 'failed', 'cancelled'].map(function (s) {
            return el('option', { value: s, selected: params.get('status') === s, text: s || 'any' });
          }))),
      el('label', {}, 'Name starts with ', el('input', { name: 'q', type: 'search', value: params.get('q') || '', 'data-testid': 'search' })),
      el('button', { type: 'submit', text: 'Filter' }));
    form.addEventListener('submit', function (ev) {
      ev.preventDefault();
      var q = new URLSearchParams();
      new FormData(form).forEach(function (v, k) { if (v) q.set(k, v); });
      location.search = q.toString();
    });
    var holder = el('div', {});
    app.replaceChildren(el('h1', { text: 'Containers' }), form, holder);
    var query = params.toString();
    follow('/api/containers' + (query ? '?' + query : ''), 'view=list' + (query ? '&' + query : ''), function (v) {
      var rows = v.rows.map(function (r) {
        return el('tr', { 'data-container': r.name, 'data-status': r.status },
          el('td', {}, el('a', { href: base + '/containers/' + encodeURIComponent(r.name), text: r.name })),
          el('td', {}, badge(r.status), r.runnersLost ? el('span', { class: 'badge s-lost', text: 'runner lost' }) : null),
          el('td', {}, bar(r.percentComplete), el('span', { class: 'pct', text: r.percentComplete + ' %' })),
          el('td', { class: 'counts', text: r.counts.succeeded + ' ok · ' + r.counts.running + ' running · ' + r.counts.pending + ' pending · ' + r.counts.failed + ' failed · ' + r.counts.skipped + ' skipped / ' + r.total }),
          el('td', { text: time(r.createdAt) }), el('td', { text: time(r.finishedAt) }), el('td', { text: duration(r.durationMs) }));
      });
      var next = new URLSearchParams(params);
      if (v.next) next.set('after', v.next);
      holder.replaceChildren(
        rows.length === 0 ? el('p', { class: 'muted', 'data-testid': 'empty', text: v.next ? 'No match among the ' + v.examined + ' containers examined; look further with the next page.' : 'No containers match.' }) :
        el('table', { class: 'list', 'data-testid': 'container-list' },
          el('thead', {}, el('tr', {}, ['Name', 'Status', 'Complete', 'Tasks', 'Started', 'Finished', 'Duration'].map(function (h) { return el('th', { text: h }); }))),
          el('tbody', {}, rows)),
        el('p', { class: 'pager' },
          params.get('after') ? el('a', { href: '?' + (function () { var p = new URLSearchParams(params); p.delete('after'); return p.toString(); })(), text: '« First page' }) : null,
          v.next ? el('a', { href: '?' + next.toString(), 'data-testid': 'next-page', text: 'Next page »' }) : null));
    });
  }

  // ---- One container --------------------------------------------------------
  function containerPage() {
    var name = app.dataset.container;
    var head = el('div', {}), graph = el('div', { class: 'graph' }), table = el('div', {}), last = null;
    // Filters the task table and dims the graph as you type; kept across live updates.
    var filter = el('input', { type: 'search', 'data-testid': 'task-filter', placeholder: 'name, status, text, error, input or checkpoint', 'aria-label': 'Filter tasks' });
    filter.addEventListener('input', function () { if (last) { drawGraph(graph, last, filter.value); drawTasks(table, last, filter.value); } });
    app.replaceChildren(el('h1', {}, el('span', { text: name })), head, graph, el('p', { class: 'filters' }, el('label', {}, 'Filter tasks ', filter)), table);
    follow('/api/containers/' + encodeURIComponent(name), 'view=container&container=' + encodeURIComponent(name), function (v) {
      var r = v.report;
      var actions = readOnly ? null : el('div', { class: 'actions' },
        r.counts.failed + r.counts.skipped + r.counts.cancelled > 0 ? el('button', { 'data-action': 'retry', onclick: act('/api/containers/' + encodeURIComponent(name) + '/retry'), text: 'Retry failed tasks' }) : null,
        r.status === 'running' ? el('button', { 'data-action': 'cancel', class: 'danger', onclick: act('/api/containers/' + encodeURIComponent(name) + '/cancel', 'Cancel container "' + name + '"?'), text: 'Cancel container' }) : null);
      head.replaceChildren(el('div', { class: 'summary', 'data-testid': 'summary', 'data-status': r.status, 'data-percent': r.percentComplete },
        badge(r.status), bar(r.percentComplete), el('span', { class: 'pct', text: r.percentComplete + ' %' }),
        el('span', { text: ' ' + r.counts.succeeded + '/' + r.total + ' succeeded, ' + r.counts.running + ' running, ' + r.counts.failed + ' failed' }),
        el('span', { class: 'eta', 'data-testid': 'eta', text: ' · ETA ' + (r.etaMs === null ? 'unknown' : duration(r.etaMs)) }),
        r.cancelRequested ? el('span', { class: 'badge s-cancelled', text: 'cancel requested' }) : null), actions);
      last = v;
      drawGraph(graph, v, filter.value);
      drawTasks(table, v, filter.value);
    });
  }
  function act(path, confirmText) {
    return function (ev) {
      if (confirmText && !window.confirm(confirmText)) return;
      ev.target.disabled = true;
      post(path).then(function () { ev.target.disabled = false; }, function (e) { ev.target.disabled = false; showBanner('Action failed: ' + e.message); });
    };
  }
  function nodeClass(task, detail) {
    if (task.status === 'failed') return detail.rootFailure ? 'n-failed-root' : 'n-failed';
    if (task.runnerLost) return 'n-lost';
    return 'n-' + task.status;
  }
  /** Whether a task matches the filter text: every word appears in its name, status, texts, errors, input or checkpoint. */
  function matches(task, detail, text) {
    var words = (text || '').toLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0) return true;
    var hay = [task.name, task.status, task.reason, task.statusText, task.runnerId, task.lastError && (task.lastError.name + ' ' + task.lastError.message),
      detail.input, detail.checkpoint].concat(detail.attempts.map(function (a) { return a.name + ' ' + a.message; })).join('\n').toLowerCase();
    return words.every(function (w) { return hay.indexOf(w) !== -1; });
  }
  function drawGraph(holder, v, text) {
    var g = v.graph;
    if (g.omitted) { holder.replaceChildren(el('p', { class: 'muted', text: 'Too many tasks to draw; see the table.' })); return; }
    var root = svg('svg', { width: g.width, height: g.height, viewBox: '0 0 ' + g.width + ' ' + g.height, 'data-testid': 'graph', role: 'img' });
    g.edges.forEach(function (e) {
      root.appendChild(svg('polyline', { class: 'edge', points: e.points.map(function (p) { return p.x + ',' + p.y; }).join(' ') }));
    });
    var byName = {};
    v.report.tasks.forEach(function (t, i) { byName[t.name] = { task: t, detail: v.details[i] }; });
    g.nodes.forEach(function (n) {
      var t = byName[n.name];
      if (!t) return;
      var group = svg('g', { class: 'node ' + nodeClass(t.task, t.detail) + (matches(t.task, t.detail, text) ? '' : ' dim'), 'data-task': n.name, 'data-status': t.task.status, transform: 'translate(' + n.x + ',' + n.y + ')' });
      group.appendChild(svg('rect', { width: n.width, height: n.height, rx: 6 }));
      var fill = svg('rect', { class: 'progress', y: n.height - 5, height: 5, width: n.width * t.task.percentComplete / 100 });
      group.appendChild(fill);
      var label = svg('text', { x: 8, y: 18 }); label.textContent = n.name.length > 22 ? n.name.slice(0, 21) + '…' : n.name;
      var sub = svg('text', { x: 8, y: 34, class: 'sub' }); sub.textContent = t.task.status + (t.task.status === 'running' ? ' ' + t.task.percentComplete + ' %' : '');
      var title = svg('title', {}); title.textContent = n.name + ': ' + t.task.status + (t.task.reason ? ' (' + t.task.reason + ')' : '');
      group.appendChild(title); group.appendChild(label); group.appendChild(sub);
      root.appendChild(group);
    });
    holder.replaceChildren(root);
  }
  function drawTasks(holder, v, text) {
    var open = {};
    holder.querySelectorAll('details[open]').forEach(function (d) { open[d.dataset.key] = true; });
    var shown = v.report.tasks.map(function (t, i) { return i; }).filter(function (i) { return matches(v.report.tasks[i], v.details[i], text); });
    var rows = shown.map(function (i) {
      var t = v.report.tasks[i];
      var d = v.details[i];
      var lease = t.runnerId ? el('div', { class: 'lease' }, 'held by ', el('code', { text: t.runnerId }),
        d.heartbeatAgeMs === null ? '' : ', heartbeat ' + duration(d.heartbeatAgeMs) + ' ago',
        t.runnerLost ? el('span', { class: 'badge s-lost', 'data-testid': 'runner-lost', text: 'runner lost' }) : null) : null;
      var units = d.units ? el('div', { class: 'units', text: Object.keys(d.units).map(function (k) { return k + ': ' + d.units[k].toLocaleString(); }).join(' · ') }) : null;
      var error = t.lastError ? el('details', { 'data-key': 'e:' + t.name, open: open['e:' + t.name] },
        el('summary', { class: 'error-line', text: t.lastError.name + ': ' + t.lastError.message }),
        el('pre', { text: t.lastError.stack || '(no stack)' })) : null;
      var history = d.attempts.length ? el('details', { 'data-key': 'h:' + t.name, open: open['h:' + t.name] },
        el('summary', { text: d.attempts.length + ' failed attempt' + (d.attempts.length === 1 ? '' : 's') }),
        el('ol', {}, d.attempts.map(function (a) { return el('li', { text: '#' + a.attempt + ' at ' + time(a.at) + ': ' + a.name + ': ' + a.message }); }))) : null;
      var input = d.input !== null ? el('details', { 'data-key': 'i:' + t.name, open: open['i:' + t.name] },
        el('summary', { text: 'input' + (d.inputTruncated ? ' (cut)' : '') }), el('pre', { text: d.input })) : null;
      var checkpoint = d.checkpoint !== null ? el('details', { 'data-key': 'c:' + t.name, open: open['c:' + t.name] },
        el('summary', { text: 'checkpoint' + (d.checkpointTruncated ? ' (cut)' : '') }), el('pre', { text: d.checkpoint })) : null;
      var retry = !readOnly && (t.status === 'failed' || t.status === 'skipped' || t.status === 'cancelled')
        ? el('button', { 'data-action': 'retry-task', onclick: act('/api/containers/' + encodeURIComponent(v.report.name) + '/tasks/' + encodeURIComponent(t.name) + '/retry'), text: 'Retry' }) : null;
      return el('tr', { 'data-task': t.name, 'data-status': t.status, class: d.rootFailure ? 'root-failure' : null },
        el('td', {}, el('strong', { text: t.name }), t.dynamic ? el('span', { class: 'muted', text: ' (added at run time)' }) : null),
        el('td', {}, badge(t.status), t.reason ? el('div', { class: 'muted', text: t.reason }) : null),
        el('td', { text: String(t.attempt) }),
        el('td', {}, bar(t.percentComplete), el('span', { class: 'pct', text: t.percentComplete + ' %' }), units,
          t.statusText ? el('div', { class: 'status-text', text: t.statusText }) : null,
          d.etaMs !== null ? el('div', { class: 'muted', text: 'ETA ' + duration(d.etaMs) }) : null),
        el('td', {}, lease, el('div', { class: 'muted', text: 'started ' + time(t.startedAt) + (t.endedAt ? ', ended ' + time(t.endedAt) : '') + (t.durationMs !== null ? ', ' + duration(t.durationMs) : '') }),
          t.retryAt ? el('div', { class: 'muted', text: 'retry at ' + time(t.retryAt) }) : null),
        el('td', {}, error, history, input, checkpoint), el('td', {}, retry));
    });
    var hidden = v.report.tasks.length - shown.length;
    holder.replaceChildren(hidden > 0 ? el('p', { class: 'muted', 'data-testid': 'task-filter-note', text: shown.length + ' of ' + v.report.tasks.length + ' tasks match the filter' }) : '', el('table', { class: 'tasks', 'data-testid': 'task-table' },
      el('thead', {}, el('tr', {}, ['Task', 'Status', 'Attempt', 'Progress', 'Lease and times', 'Errors, input and checkpoint', ''].map(function (h) { return el('th', { text: h }); }))),
      el('tbody', {}, rows)));
  }

  // ---- Schedules and runners ------------------------------------------------
  function schedulesPage() {
    var holder = el('div', {});
    app.replaceChildren(el('h1', { text: 'Schedules' }), holder);
    follow('/api/schedules', 'view=schedules', function (rows) {
      if (rows.length === 0) { holder.replaceChildren(el('p', { class: 'muted', text: 'No schedules in this database.' })); return; }
      holder.replaceChildren.apply(holder, rows.map(function (s) {
        return el('section', { class: 'schedule', 'data-schedule': s.schedule },
          el('h2', { text: s.schedule }),
          el('p', { class: 'muted', 'data-testid': 'schedule-info', text: (s.cron ? 'cron ' + s.cron + (s.timezone ? ' (' + s.timezone + ')' : '') + ' · ' : '') + (s.nextFiring ? 'next firing ' + time(s.nextFiring) + ' · ' : '') + (s.pendingTrigger ? 'triggered by hand, waiting for a scheduler · ' : '') + 'decided up to ' + time(s.cursor) }),
          el('table', { class: 'list' }, el('thead', {}, el('tr', {}, ['Slot', 'State', 'Container', 'Reason', 'Claimed by'].map(function (h) { return el('th', { text: h }); }))),
            el('tbody', {}, s.lastSlots.map(function (slot) {
              return el('tr', { 'data-state': slot.state }, el('td', { text: time(slot.slot) }), el('td', {}, badge(slot.state)),
                el('td', {}, el('a', { href: base + '/containers/' + encodeURIComponent(slot.container), text: slot.container })),
                el('td', { text: slot.reason || '' }), el('td', {}, el('code', { text: slot.claimedBy })));
            }))));
      }));
    });
  }
  function runnersPage() {
    var holder = el('div', {});
    app.replaceChildren(el('h1', { text: 'Runners' }), holder);
    follow('/api/runners', 'view=runners', function (rows) {
      if (rows.length === 0) { holder.replaceChildren(el('p', { class: 'muted', text: 'No runner holds a task in the newest running containers.' })); return; }
      holder.replaceChildren(el('table', { class: 'list', 'data-testid': 'runners' },
        el('thead', {}, el('tr', {}, ['Runner', 'Last heartbeat', 'Tasks'].map(function (h) { return el('th', { text: h }); }))),
        el('tbody', {}, rows.map(function (r) {
          return el('tr', { 'data-runner': r.runnerId }, el('td', {}, el('code', { text: r.runnerId }), r.lost ? el('span', { class: 'badge s-lost', text: 'lost' }) : null),
            el('td', { text: r.lastHeartbeatAgeMs === null ? 'unknown' : duration(r.lastHeartbeatAgeMs) + ' ago' }),
            el('td', {}, r.tasks.map(function (t) { return el('div', {}, el('a', { href: base + '/containers/' + encodeURIComponent(t.container), text: t.container }), ' / ' + t.task + ' #' + t.attempt); })));
        }))));
    });
  }

  ({ list: listPage, container: containerPage, schedules: schedulesPage, runners: runnersPage })[app.dataset.view]();
})();
