/* The clinician's console: who is waiting, their device check and consent; admit, running late, join link. */
(function () {
  'use strict';
  var admit = document.getElementById('admit');
  function show(state) {
    Visit.say(Visit.LABELS[state.state] || state.state);
    document.getElementById('consent-state').textContent = state.treatmentConsent ? 'given' : 'not yet given';
    document.getElementById('recording-consent').textContent = state.recordingConsent ? 'given' : 'not given';
    var p = state.precheck;
    document.getElementById('precheck').textContent = p ? ('camera ' + (p.camera ? 'ok' : 'missing') + ', microphone ' +
      (p.microphone ? 'ok' : 'missing') + ', about ' + p.bandwidthKbps + ' kbit/s' + (p.rttMs ? ', ' + p.rttMs + ' ms' : '')) :
      'not yet reported';
    admit.disabled = !(state.state === 'waiting' && state.treatmentConsent);
    document.getElementById('open-room').hidden = !(state.state === 'in-progress' || state.state === 'on-leave');
  }
  admit.addEventListener('click', function () {
    admit.disabled = true;
    Visit.post('/action/admit').then(function () { window.location.assign(Visit.roomUrl); })
      .catch(function (e) { Visit.say(e.message); });
  });
  document.getElementById('send-late').addEventListener('click', function () {
    Visit.post('/action/running-late', { minutes: parseInt(document.getElementById('late-min').value, 10) })
      .then(show).catch(function (e) { Visit.say(e.message); });
  });
  document.getElementById('issue-link').addEventListener('click', function () {
    Visit.post('/link').then(function (r) { document.getElementById('link').textContent = r.url; })
      .catch(function (e) { Visit.say(e.message); });
  });
  Visit.listen({ state: show });
}());
