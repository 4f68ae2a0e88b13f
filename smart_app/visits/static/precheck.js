/* Pre-call check: camera, microphone (audio level), and a rough bandwidth/round-trip probe to the app. */
(function () {
  'use strict';
  function setItem(id, ok, text) {
    var li = document.getElementById(id);
    li.textContent = text; li.dataset.ok = ok ? 'yes' : 'no';
  }
  function probeNetwork() {
    var started = performance.now();
    return fetch(Visit.api + '/state', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
      return r.text().then(function (t) {
        var ms = Math.max(1, performance.now() - started);
        var conn = navigator.connection || {};
        var kbps = conn.downlink ? Math.round(conn.downlink * 1000) : Math.round((t.length * 8) / ms);
        return { rttMs: Math.round(conn.rtt || ms), bandwidthKbps: kbps };
      });
    }).catch(function () { return { rttMs: null, bandwidthKbps: 0 }; });
  }
  function micLevel(stream) {
    return new Promise(function (resolve) {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx || !stream.getAudioTracks().length) { resolve(0); return; }
      var ctx = new Ctx(), analyser = ctx.createAnalyser(), data = new Uint8Array(analyser.fftSize), peak = 0;
      ctx.createMediaStreamSource(stream).connect(analyser);
      var until = performance.now() + 800;
      (function tick() {
        analyser.getByteTimeDomainData(data);
        for (var i = 0; i < data.length; i++) { peak = Math.max(peak, Math.abs(data[i] - 128)); }
        if (performance.now() < until) { requestAnimationFrame(tick); } else { ctx.close(); resolve(peak); }
      }());
    });
  }
  window.runPrecheck = function () {
    var result = { camera: false, microphone: false, browser: !!window.RTCPeerConnection };
    return navigator.mediaDevices.getUserMedia({ video: true, audio: true }).then(function (stream) {
      document.getElementById('preview').srcObject = stream;
      result.camera = stream.getVideoTracks().some(function (t) { return t.readyState === 'live'; });
      return micLevel(stream).then(function (level) { result.microphone = stream.getAudioTracks().length > 0; result.micLevel = level; });
    }).catch(function () { /* permission refused or no device: reported as such */ })
      .then(probeNetwork).then(function (net) {
        result.bandwidthKbps = net.bandwidthKbps; result.rttMs = net.rttMs;
        setItem('check-camera', result.camera, 'Camera: ' + (result.camera ? 'working' : 'not available'));
        setItem('check-microphone', result.microphone, 'Microphone: ' + (result.microphone ? 'working' : 'not available'));
        var good = result.bandwidthKbps >= 500;
        setItem('check-network', good, 'Connection: ' + (good ? 'good' : 'weak — audio may be used instead of video') +
                ' (about ' + result.bandwidthKbps + ' kbit/s)');
        return result;
      });
  };
}());
