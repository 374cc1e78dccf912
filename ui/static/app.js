// ferry dashboard: refreshes the live part of a page every few seconds
// and sends forms marked "async" without leaving the page. Without this
// script every page still works: forms post and come back.
(function () {
  "use strict";
  var live = document.getElementById("live");
  var flash = document.getElementById("flash");
  var busy = false;
  var last = null;
  var force = false;

  function loginAgain() {
    window.location.assign("/ui/?next=" + encodeURIComponent(window.location.pathname + window.location.search));
  }

  function show(msg, bad) {
    if (!flash) { return; }
    flash.textContent = msg;
    flash.hidden = false;
    flash.className = bad ? "error" : "";
  }

  function refresh() {
    if (!live || busy) { return Promise.resolve(); }
    busy = true;
    return fetch(window.location.href, { headers: { "X-Ferry-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (resp) {
        if (resp.status === 401 || resp.headers.get("X-Ferry-Login")) { loginAgain(); return null; }
        return resp.text();
      })
      .then(function (html) {
        if (html === null || html === undefined || html === last) { return; }
        // A keyboard user on a button of the live part keeps it: the
        // figures wait for the next tick after focus leaves.
        if (live.contains(document.activeElement) && document.activeElement !== live && !force) { return; }
        last = html;
        live.innerHTML = html;
        bind(live);
      })
      .catch(function () { /* the server is away: the next tick tries again */ })
      .finally(function () { busy = false; });
  }

  function submit(ev) {
    var form = ev.target;
    ev.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      headers: { "X-Ferry-Live": "1", "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(new FormData(form)).toString(),
      credentials: "same-origin"
    }).then(function (resp) {
      if (resp.status === 401) { loginAgain(); return; }
      return resp.text().then(function (msg) { show(msg, !resp.ok); });
    }).catch(function () {
      show("The server did not answer; nothing may have changed. Try again.", true);
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      (function again() {
        // Show the result at once, after any refresh already under way.
        if (busy) { window.setTimeout(again, 200); return; }
        force = true;
        refresh().finally(function () { force = false; });
      }());
    });
  }

  function bind(root) {
    root.querySelectorAll("form.async").forEach(function (f) { f.addEventListener("submit", submit); });
  }

  bind(document);
  if (live) {
    var every = parseInt(live.getAttribute("data-refresh"), 10);
    if (every > 0) {
      window.setInterval(function () {
        if (document.visibilityState === "visible") { refresh(); }
      }, every);
    }
  }
}());
