/* The visit page: local WebRTC call (signaling over the app's event stream), controls, quality and
   graceful degradation from getStats, audio-only fallback, automatic reconnection, chat and documents.
   The clinician's side makes the offers; the patient answers. Hosted providers (Daily) open in a frame. */
(function () {
  'use strict';
  var provider = Visit.role === 'provider';
  var pc = null, session = '', local = null, join = null, pending = [], audioOnly = false, poorFor = 0;
  var remoteVideo = document.getElementById('remote'), localVideo = document.getElementById('local');
  var quality = document.getElementById('quality');
  window.visitCall = { state: function () { return pc ? pc.connectionState : 'new'; }, pc: function () { return pc; } };

  function signal(kind, data) { return Visit.post('/signal', { kind: kind, session: session, data: data }); }

  function media() {
    if (local) { return Promise.resolve(local); }
    return navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } }).catch(function () {
      audioOnly = true; return navigator.mediaDevices.getUserMedia({ audio: true });
    }).then(function (s) { local = s; localVideo.srcObject = s; return s; });
  }

  function fresh(id) {
    if (pc) { pc.onicecandidate = null; pc.onconnectionstatechange = null; pc.close(); }
    session = id; pending = [];
    pc = new RTCPeerConnection({ iceServers: (join && join.iceServers) || [] });
    local.getTracks().forEach(function (t) { pc.addTrack(t, local); });
    pc.ontrack = function (ev) { if (remoteVideo.srcObject !== ev.streams[0]) { remoteVideo.srcObject = ev.streams[0]; } };
    pc.onicecandidate = function (ev) { if (ev.candidate) { signal('candidate', ev.candidate.toJSON()); } };
    pc.onconnectionstatechange = function () {
      var st = pc.connectionState;
      Visit.say(st === 'connected' ? 'Connected' : st === 'failed' || st === 'disconnected' ? 'Reconnecting…' : 'Connecting…');
      if (st === 'failed') { reconnect(); }
      if (st === 'disconnected') { setTimeout(function () { if (pc && pc.connectionState === 'disconnected') { reconnect(); } }, 4000); }
    };
    return pc;
  }

  function offer(restart) {
    return media().then(function () {
      if (!restart || !pc) { fresh(Math.random().toString(36).slice(2)); }
      return pc.createOffer(restart ? { iceRestart: true } : undefined);
    }).then(function (o) { return pc.setLocalDescription(o); })
      .then(function () { return signal('offer', pc.localDescription.toJSON()); });
  }

  function reconnect() {  // automatic: ICE restart from the offerer; the patient asks for one
    if (provider) { offer(true).catch(function () { offer(false); }); } else { signal('hello'); }
  }

  function flush() { pending.splice(0).forEach(function (c) { pc.addIceCandidate(c).catch(function () {}); }); }

  function onSignal(msg) {
    if (msg.kind === 'hello' && provider) { offer(false); return; }
    if (msg.kind === 'offer' && !provider) {
      media().then(function () {
        if (!pc || msg.session !== session) { fresh(msg.session); }
        return pc.setRemoteDescription(msg.data);
      }).then(function () { flush(); return pc.createAnswer(); })
        .then(function (a) { return pc.setLocalDescription(a); })
        .then(function () { return signal('answer', pc.localDescription.toJSON()); });
      return;
    }
    if (msg.kind === 'answer' && provider && pc && msg.session === session) {
      pc.setRemoteDescription(msg.data).then(flush); return;
    }
    if (msg.kind === 'candidate' && pc && msg.session === session) {
      if (pc.remoteDescription) { pc.addIceCandidate(msg.data).catch(function () {}); } else { pending.push(msg.data); }
    }
  }

  /* Quality from getStats: packet loss and round-trip time; on a poor link lower resolution and frame rate
     first, then fall back to audio only, rather than dropping the call. */
  var last = null;
  function sample() {
    if (!pc || pc.connectionState !== 'connected') { return; }
    pc.getStats().then(function (stats) {
      var lost = 0, recv = 0, rtt = null, frames = 0;
      stats.forEach(function (r) {
        if (r.type === 'inbound-rtp') { lost += r.packetsLost || 0; recv += r.packetsReceived || 0; if (r.kind === 'video') { frames += r.framesDecoded || 0; } }
        if (r.type === 'candidate-pair' && r.nominated && r.currentRoundTripTime !== undefined) { rtt = r.currentRoundTripTime; }
      });
      var d = last ? { lost: lost - last.lost, recv: recv - last.recv } : { lost: 0, recv: recv };
      last = { lost: lost, recv: recv };
      var loss = d.recv + d.lost > 0 ? d.lost / (d.recv + d.lost) : 0;
      var level = loss > 0.1 || (rtt !== null && rtt > 0.6) ? 'poor' : loss > 0.03 || (rtt !== null && rtt > 0.3) ? 'fair' : 'good';
      quality.dataset.quality = level; quality.dataset.framesDecoded = String(frames);
      quality.textContent = level + (rtt !== null ? ' (' + Math.round(rtt * 1000) + ' ms)' : '');
      poorFor = level === 'poor' ? poorFor + 1 : 0;
      degrade(level);
    }).catch(function () {});
  }
  function degrade(level) {
    if (!pc) { return; }
    pc.getSenders().forEach(function (s) {
      if (!s.track || s.track.kind !== 'video') { return; }
      var p = s.getParameters(); if (!p.encodings || !p.encodings.length) { p.encodings = [{}]; }
      var e = p.encodings[0];
      e.scaleResolutionDownBy = level === 'good' ? 1 : level === 'fair' ? 2 : 4;
      e.maxFramerate = level === 'good' ? 30 : level === 'fair' ? 15 : 8;
      e.maxBitrate = level === 'good' ? 1500000 : level === 'fair' ? 500000 : 150000;
      s.setParameters(p).catch(function () {});
      if (poorFor >= 5 && !audioOnly) { audioOnly = true; s.track.enabled = false; }
      if (level === 'good' && audioOnly && cameraOn) { audioOnly = false; s.track.enabled = true; }
    });
    document.getElementById('audio-only').hidden = !audioOnly;
  }
  setInterval(sample, 2000);

  /* controls */
  var cameraOn = true;
  document.getElementById('mute').addEventListener('click', function () {
    var t = local && local.getAudioTracks()[0]; if (!t) { return; }
    t.enabled = !t.enabled; this.setAttribute('aria-pressed', String(!t.enabled)); this.textContent = t.enabled ? 'Mute' : 'Unmute';
  });
  document.getElementById('camera').addEventListener('click', function () {
    var t = local && local.getVideoTracks()[0]; if (!t) { return; }
    cameraOn = !cameraOn; t.enabled = cameraOn && !audioOnly;
    this.setAttribute('aria-pressed', String(!cameraOn)); this.textContent = cameraOn ? 'Turn camera off' : 'Turn camera on';
  });
  document.getElementById('leave').addEventListener('click', function () {
    var done = function () { if (local) { local.getTracks().forEach(function (t) { t.stop(); }); } if (pc) { pc.close(); } };
    if (provider) { stopRecording().then(function () { return Visit.post('/action/finish'); }).then(done).then(function () { Visit.say('The visit has ended'); }); }
    else { signal('bye'); Visit.post('/action/leave').then(done).then(function () { Visit.say('You left the visit. Reopen the page to rejoin.'); }); }
  });
  /* Recording: the server first checks the patient's recording consent for this visit; with the local
     provider the clinician's browser then records (MediaRecorder) and uploads the file to the hub. */
  var record = document.getElementById('record'), recorder = null, chunks = [];
  function stopRecording() {
    if (!recorder) { return Promise.resolve(); }
    var r = recorder; recorder = null;
    return new Promise(function (resolve) {
      r.onstop = function () {
        var form = new FormData();
        form.append('file', new Blob(chunks, { type: 'video/webm' }), 'recording.webm'); chunks = [];
        Visit.post('/recording/file', form).then(function () { record.textContent = 'Recording saved'; record.disabled = true; })
          .catch(function (e) { Visit.say(e.message); }).then(resolve);
      };
      r.stop();
    });
  }
  if (record) {
    record.addEventListener('click', function () {
      if (recorder) { stopRecording(); return; }
      Visit.post('/recording').then(function () {
        if (!(join && join.recordInBrowser && window.MediaRecorder)) { record.disabled = true; record.textContent = 'Recording'; return; }
        var tracks = [].concat(remoteVideo.srcObject ? remoteVideo.srcObject.getTracks() : [], local.getAudioTracks());
        recorder = new MediaRecorder(new MediaStream(tracks), { mimeType: 'video/webm' }); chunks = [];
        recorder.ondataavailable = function (ev) { if (ev.data.size) { chunks.push(ev.data); } };
        recorder.start(1000); record.disabled = false; record.textContent = 'Stop recording'; record.setAttribute('aria-pressed', 'true');
      }).catch(function (e) { Visit.say(e.message); });
    });
  }
  var allow = document.getElementById('allow-recording');
  if (allow) {
    allow.addEventListener('click', function () { Visit.post('/consent/recording').then(function () { allow.disabled = true; }); });
  }
  function showState(s) {
    if (record) {
      if (!recorder) { record.disabled = !(s.recordingConsent && s.recordingAvailable) || s.recording; }
      document.getElementById('record-hint').textContent = !s.recordingConsent ? "Recording needs the patient's consent for this visit." :
        !s.recordingAvailable ? 'This video service does not record.' : '';
    }
    if (allow) { allow.disabled = !!s.recordingConsent; }
    if (s.state === 'finished') { Visit.say('The visit has ended'); if (!provider) { window.location.assign(Visit.summaryUrl); } }
  }

  /* chat and documents */
  var messages = document.getElementById('messages'), docs = document.getElementById('documents');
  function loadChat() {
    Visit.get('/chat').then(function (r) {
      messages.replaceChildren.apply(messages, r.messages.map(function (m) {
        var li = document.createElement('li'); li.textContent = (m.from === Visit.role ? 'You' : m.from === 'patient' ? 'Patient' : 'Clinician') + ': ' + m.text; return li;
      }));
    });
  }
  function loadDocs() {
    Visit.get('/documents').then(function (r) {
      docs.replaceChildren.apply(docs, r.documents.map(function (d) {
        var li = document.createElement('li'), a = document.createElement('a');
        a.href = Visit.api + '/documents/' + encodeURIComponent(d.id); a.textContent = d.title; a.setAttribute('download', '');
        li.appendChild(a); li.appendChild(document.createTextNode(' (' + (d.from === Visit.role ? 'you' : d.from) + ')')); return li;
      }));
    });
  }
  document.getElementById('chat-form').addEventListener('submit', function (ev) {
    ev.preventDefault(); var input = document.getElementById('chat-text'); if (!input.value.trim()) { return; }
    Visit.post('/chat', { text: input.value }).then(function () { input.value = ''; }).catch(function (e) { Visit.say(e.message); });
  });
  document.getElementById('doc-form').addEventListener('submit', function (ev) {
    ev.preventDefault(); Visit.post('/documents', new FormData(ev.target)).then(function () { ev.target.reset(); })
      .catch(function (e) { Visit.say(e.message); });
  });

  /* start: a reopened page resumes the same visit (rejoin), then joins the call */
  function start() {
    var step = !provider && (Visit.state === 'on-leave' || Visit.state === 'in-progress') ? Visit.post('/action/rejoin') : Promise.resolve();
    return step.then(function () { return Visit.get('/join'); }).then(function (j) {
      join = j;
      if (j.kind === 'daily') {
        var frame = document.createElement('iframe'); frame.allow = 'camera; microphone; autoplay; display-capture';
        frame.src = j.url + '?t=' + encodeURIComponent(j.token); frame.title = 'Video call';
        remoteVideo.replaceWith(frame); return null;
      }
      return media().then(function () { return provider ? offer(false) : signal('hello'); });
    }).catch(function (e) { Visit.say(e.message); });
  }
  /* a closed tab tells the server at once (on-leave); reopening the page resumes the same visit (rejoin) */
  window.addEventListener('pagehide', function () {
    if (!provider && (Visit.state === 'in-progress')) { navigator.sendBeacon(Visit.api + '/action/leave'); }
  });
  var started = false;
  Visit.listen({
    signal: onSignal, state: showState, chat: loadChat, document: loadDocs,
    open: function () {
      if (!started) { started = true; start(); }
      else if (join && join.kind === 'local' && (!pc || pc.connectionState !== 'connected')) { reconnect(); }
    }
  });
  loadChat(); loadDocs();
}());
