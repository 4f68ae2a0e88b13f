/* Shared by the visit pages: the JSON API and the live event stream (EventSource reconnects by itself). */
(function () {
  'use strict';
  var main = document.getElementById('main');
  var V = {
    id: main.dataset.visit, role: main.dataset.role, api: main.dataset.api,
    roomUrl: main.dataset.room, summaryUrl: main.dataset.summary, state: main.dataset.state,
    request: function (method, path, body) {
      var opts = { method: method, credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
      if (body instanceof FormData) { opts.body = body; }
      else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers['Content-Type'] = 'application/json'; }
      return fetch(V.api + path, opts).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (data) {
          if (!r.ok) { var e = new Error(data.message || ('HTTP ' + r.status)); e.code = data.error; throw e; }
          return data;
        });
      });
    },
    post: function (path, body) { return V.request('POST', path, body === undefined ? {} : body); },
    get: function (path) { return V.request('GET', path); },
    say: function (text) { var s = document.getElementById('status'); if (s) { s.textContent = text; } },
    listen: function (handlers) {
      var source = new EventSource(V.api + '/events');
      ['state', 'chat', 'document', 'signal'].forEach(function (type) {
        source.addEventListener(type, function (ev) {
          var data = JSON.parse(ev.data);
          if (type === 'state') { V.state = data.state; }
          if (handlers[type]) { handlers[type](data); }
        });
      });
      source.onopen = function () { if (handlers.open) { handlers.open(); } };
      source.onerror = function () { if (handlers.lost) { handlers.lost(); } };
      return source;
    },
    LABELS: { 'booked': 'Not in the waiting room', 'waiting': 'Waiting for your clinician',
              'in-progress': 'Visit in progress', 'on-leave': 'Reconnecting…', 'finished': 'The visit has ended',
              'no-show': 'Marked as missed', 'cancelled': 'Cancelled' }
  };
  window.Visit = V;
}());
