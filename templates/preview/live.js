// The live preview follows saved files: ask the server for the fingerprint of the followed
// files every POLL_MS ms and reload when it is no longer the one this page was built from.
(function () {
  "use strict";
  var built = document.documentElement.getAttribute("data-version");
  function again(ms) { window.setTimeout(poll, ms); }
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (response) {
      return response.ok ? response.text() : built;
    }).then(function (now) {
      if (now.trim() !== built) { window.location.reload(); } else { again(POLL_MS); }
    }, function () { again(2000); });  // the preview was stopped: keep asking, more slowly
  }
  again(POLL_MS);
})();
