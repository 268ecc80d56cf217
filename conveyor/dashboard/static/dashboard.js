// conveyor dashboard: live regions. No framework, no build step.
//
// Every element with data-live="<url>" is re-rendered from that URL, which
// answers {"html": "..."} (the same server-side template fragment). Updates
// are triggered by the API's server-sent event stream when the page names one
// (body[data-events-url]) and it answers; otherwise (or when it drops) the
// regions are polled every 2 seconds. A region with data-live-poll="<ms>" is also
// fetched on that interval (its data has no event, e.g. workers and queue depths).
// Forms with data-confirm="question" ask before they are sent (destructive actions).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
})();

(function () {
  "use strict";
  var POLL_MS = 2000;
  var SSE_SAFETY_POLL_MS = 30000;
  var regions = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
  if (!regions.length) { return; }
  var status = document.getElementById("live-status");
  var timer = null;
  var pending = false;
  var mode = "· live (polling)";

  // only changes of mode or trouble are announced, not every refresh
  function say(text) { if (status && status.textContent !== text) { status.textContent = text; } }

  function refresh(region) {
    return fetch(region.getAttribute("data-live"), {
      credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); return null; }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (data) {
      if (!data || typeof data.html !== "string") { return; }
      // never yank content from under the keyboard focus; try again next time
      if (region.contains(document.activeElement) && document.activeElement !== document.body) { return; }
      if (region.conveyorHtml !== data.html) {
        region.innerHTML = data.html;
        region.conveyorHtml = data.html;
      }
    });
  }

  function refreshAll() {
    if (pending) { return; }
    pending = true;
    Promise.all(regions.map(refresh)).then(function () {
      say(mode);
    }).catch(function () {
      say("· live updates paused: server unreachable, retrying");
    }).then(function () { pending = false; });
  }

  function poll(interval) {
    if (timer) { clearInterval(timer); }
    timer = setInterval(refreshAll, interval);
  }

  function listen(url) {
    var source;
    var opened = false;
    try { source = new EventSource(url, { withCredentials: true }); } catch (e) { poll(POLL_MS); return; }
    source.onopen = function () {
      opened = true;
      poll(SSE_SAFETY_POLL_MS);
      mode = "· live (event stream)";
      say(mode);
    };
    source.onmessage = refreshAll;
    source.onerror = function () {
      // not there, not allowed, or dropped: fall back to polling
      source.close();
      mode = "· live (polling)";
      poll(POLL_MS);
      if (opened) { refreshAll(); }
    };
    // named events (job.*) also trigger a refresh
    ["job", "job.created", "job.updated", "job.state"].forEach(function (name) {
      source.addEventListener(name, refreshAll);
    });
  }

  // regions whose data (e.g. workers) has no event also refresh on their own interval
  regions.forEach(function (region) {
    var every = parseInt(region.getAttribute("data-live-poll") || "", 10);
    if (every > 0) {
      setInterval(function () { refresh(region).catch(function () {}); }, every);
    }
  });

  var events = document.body.getAttribute("data-events-url");
  if (events && window.EventSource) { listen(events); } else { poll(POLL_MS); }
  say(mode);
})();
