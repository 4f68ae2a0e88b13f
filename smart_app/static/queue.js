// Live waiting-room status: re-fetch the queue fragment every 20 s (no inline script: CSP-safe).
(function () {
  "use strict";
  var box = document.getElementById("queue");
  var count = document.getElementById("queue-count");
  if (!box || !window.fetch || !window.DOMParser) { return; }
  function refresh() {
    fetch(box.getAttribute("data-src"), {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var doc = new DOMParser().parseFromString(html, "text/html");
        var main = doc.body;
        if (!main) { return; }
        box.replaceChildren.apply(box, Array.prototype.slice.call(main.childNodes));
        if (count) { count.textContent = String(box.querySelectorAll("li").length); }
      })
      .catch(function () { /* keep the last known queue */ });
  }
  window.setInterval(refresh, 20000);
})();
