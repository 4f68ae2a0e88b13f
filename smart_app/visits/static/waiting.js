/* The patient's waiting room: consent, device check (sent to the clinician), live status, leave. */
(function () {
  'use strict';
  var left = false, entering = null;
  function show(state) {
    Visit.state = state.state;
    Visit.say(Visit.LABELS[state.state] || state.state);
    var late = document.getElementById('late');
    if (state.runningLate) { late.hidden = false; late.textContent = 'Your clinician is running about ' + state.runningLate + ' minutes late.'; }
    document.getElementById('consent').hidden = !!state.treatmentConsent;
    if (state.state === 'in-progress' || state.state === 'on-leave') { window.location.assign(Visit.roomUrl); }
    if (state.state === 'finished') { window.location.assign(Visit.summaryUrl); }
  }
  function check() {
    return window.runPrecheck().then(function (result) {
      if (Visit.state === 'waiting') { return Visit.post('/precheck', result); }
    });
  }
  function enter() {
    if (entering) { return entering; }
    var step = Visit.state === 'in-progress' || Visit.state === 'on-leave' ? Promise.resolve() :
      Visit.post('/action/arrive').then(show);
    entering = step.then(check).catch(function (e) { Visit.say(e.message); })
      .then(function () { entering = null; });
    return entering;
  }
  document.getElementById('give-consent').addEventListener('click', function () {
    Visit.post('/consent/treatment').then(function () { document.getElementById('consent').hidden = true; })
      .catch(function (e) { Visit.say(e.message); });
  });
  document.getElementById('run-check').addEventListener('click', check);
  document.getElementById('leave').addEventListener('click', function () {
    left = true; Visit.post('/action/leave').then(show).catch(function (e) { Visit.say(e.message); });
  });
  window.addEventListener('pagehide', function () {
    if (!left && Visit.state === 'waiting') { navigator.sendBeacon(Visit.api + '/action/leave'); }
  });
  Visit.listen({ state: show, open: function () { if (Visit.state === 'booked' && !left) { enter(); } } });
  enter();
}());
