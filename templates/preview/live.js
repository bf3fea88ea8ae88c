// The live preview follows saved files: ask the server for the fingerprint of the followed
// files every POLL_MS ms and reload when it is no longer the one this page was built from.
// Each frame is as tall as its email, so the page scrolls as one and the place the editor
// was reading is kept across the reload (sessionStorage: the frames load after the page).
(function () {
  "use strict";
  var built = document.documentElement.getAttribute("data-version");
  var KEY = "newsletter-preview-scroll";
  history.scrollRestoration = "manual";

  function again(ms) { window.setTimeout(poll, ms); }
  function poll() {
    fetch("/version", {cache: "no-store"}).then(function (response) {
      return response.ok ? response.text() : built;
    }).then(function (now) {
      if (now.trim() !== built) {
        sessionStorage.setItem(KEY, JSON.stringify({href: location.href, y: window.scrollY}));
        window.location.reload();
      } else {
        again(POLL_MS);
      }
    }, function () { again(2000); });  // the preview was stopped: keep asking, more slowly
  }

  function fit(frame) {
    var doc = frame.contentDocument;  // same origin; the frame runs no script (sandbox, CSP)
    if (doc && doc.documentElement) {
      frame.style.height = Math.max(doc.documentElement.scrollHeight, 200) + "px";
    }
  }

  function restore() {
    var saved = JSON.parse(sessionStorage.getItem(KEY) || "null");
    sessionStorage.removeItem(KEY);
    if (saved && saved.href === location.href) { window.scrollTo(0, saved.y); }
  }

  // check's findings take longer than the edition: fetch them into their box when ready.
  function findings() {
    var box = document.getElementById("findings-box");
    var url = box && box.getAttribute("data-pending");
    if (!url) { return; }
    fetch(url, {cache: "no-store"}).then(function (response) {
      if (response.status === 200) {
        return response.text().then(function (html) { box.outerHTML = html; });
      }
      if (response.status === 204) { window.setTimeout(findings, 300); }
      // 409: the files changed since this page was built; poll() reloads it
    }, function () { window.setTimeout(findings, 2000); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    findings();
    var frames = Array.prototype.slice.call(document.querySelectorAll("iframe.email"));
    var waiting = frames.length;
    function done(frame) {
      fit(frame);
      if (frame.getAttribute("data-fitted") !== "yes") {
        frame.setAttribute("data-fitted", "yes");
        waiting -= 1;
        if (waiting === 0) { restore(); }
      }
    }
    frames.forEach(function (frame) {
      frame.addEventListener("load", function () { done(frame); });
      var doc = frame.contentDocument;
      if (doc && doc.readyState === "complete" && doc.URL !== "about:blank") { done(frame); }
    });
    if (waiting === 0) { restore(); }
    again(POLL_MS);
  });
})();
