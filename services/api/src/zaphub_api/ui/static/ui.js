// The dashboard's few behaviours beyond htmx: QR countdowns, message statuses that only move
// forward, and forms that clear themselves. Loaded from this origin (the CSP allows no inline script).
(function () {
  "use strict";

  function tick() {
    document.querySelectorAll("[data-expires]").forEach(function (el) {
      var left = Math.round((Date.parse(el.dataset.expires) - Date.now()) / 1000);
      el.textContent = left > 0 ? "Expires in " + left + " s." : "Expired: a new code follows.";
    });
  }
  setInterval(tick, 1000);
  document.addEventListener("DOMContentLoaded", tick);
  // htmx, loaded first, has processed the page by now: what browser tests wait for before clicking.
  document.addEventListener("DOMContentLoaded", function () { document.documentElement.dataset.htmx = "ready"; });
  document.addEventListener("htmx:afterSettle", tick);

  // A receipt can overtake another (read before delivered): never show a status behind the shown one.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    var message = evt.detail;
    if (!message || !message.type || message.type.indexOf("msg-") !== 0) return;
    var shown = evt.target.querySelector("[data-rank]");
    var incoming = /data-rank="(\d+)"/.exec(message.data || "");
    if (shown && incoming && Number(incoming[1]) < Number(shown.dataset.rank)) evt.preventDefault();
  });

  // What an event is about to put in an element is newer than what a refetch of it still in flight
  // will bring (the resync after a reconnection, a poll): abort the refetches of the element and of
  // what it holds. (A refetch of a larger part, a thread or a table, goes on: it brings more.)
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    if (evt.defaultPrevented || !evt.target.querySelectorAll) return;
    var stale = Array.prototype.slice.call(evt.target.querySelectorAll("[hx-get]"));
    if (evt.target.hasAttribute("hx-get")) stale.push(evt.target);
    stale.forEach(function (el) { htmx.trigger(el, "htmx:abort"); });
  });

  // The event stream says the session ended (the key was revoked, or it was signed out elsewhere).
  document.addEventListener("htmx:sseMessage", function (evt) {
    var message = evt.detail;
    if (message && message.type === "signed-out") {
      window.location.assign("/ui/sign-in?notice=" + encodeURIComponent(message.data || "ended"));
    }
  });

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var form = evt.target.closest && evt.target.closest("form");
    if (form) form.querySelectorAll(".error-slot").forEach(function (slot) { slot.textContent = ""; });
  });

  document.addEventListener("htmx:afterRequest", function (evt) {
    var form = evt.target;
    if (evt.detail.successful && form.matches && form.matches("form[data-reset]")) {
      form.querySelectorAll("textarea, input[type=file], input:not([type=hidden]):not([name=to])").forEach(
        function (input) { input.value = ""; });
    }
  });
})();
