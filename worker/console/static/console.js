// statehook console: what JavaScript adds to pages that work without it. No library, no
// build step; nothing is fetched from another host. Text from the server goes into the page
// through textContent only.
"use strict";

(function () {
  const base = "/ui";

  // The overview refreshes its live part: the page is fetched again and the part swapped.
  function refresh(live) {
    const every = parseInt(live.dataset.refresh, 10) || 5000;
    let timer = null;
    async function tick() {
      timer = null;
      if (!document.hidden) {
        try {
          const answer = await fetch(window.location.href, { credentials: "same-origin", redirect: "follow" });
          if (answer.ok && !new URL(answer.url).pathname.startsWith(base + "/login")) {
            const doc = new DOMParser().parseFromString(await answer.text(), "text/html");
            const fresh = doc.getElementById(live.id);
            if (fresh) {
              live.replaceWith(document.importNode(fresh, true));
              live = document.getElementById(fresh.id);
            }
          } else if (answer.url.includes(base + "/login")) {
            return; // the session ended: the next navigation asks to sign in
          }
        } catch (e) { /* the API is restarting: try again at the next tick */ }
      }
      timer = window.setTimeout(tick, every);
    }
    timer = window.setTimeout(tick, every);
  }

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.textContent = text;
    return td;
  }

  function eventRow(e) {
    const tr = document.createElement("tr");
    tr.className = "fresh";
    const at = document.createElement("td");
    const time = document.createElement("time");
    time.dateTime = e.at; time.textContent = e.at;
    at.appendChild(time);
    tr.appendChild(at);
    const sev = document.createElement("td");
    const badge = document.createElement("span");
    badge.className = "badge badge-" + (["info", "warning", "critical"].includes(e.severity) ? e.severity : "info");
    badge.textContent = e.severity;
    sev.appendChild(badge);
    tr.appendChild(sev);
    tr.appendChild(cell(e.type, "mono"));
    const res = document.createElement("td");
    const link = document.createElement("a");
    link.href = base + "/resource?" + new URLSearchParams({ rkey: e.rkey }).toString();
    link.className = "mono";
    link.textContent = e.rkey;
    res.appendChild(link);
    tr.appendChild(res);
    tr.appendChild(cell(e.summary));
    return tr;
  }

  // The events page: a live tail (server-sent events) above what the page was served with.
  function tail(status) {
    const rows = document.getElementById("event-rows");
    if (!rows || !window.EventSource) return;
    const source = new EventSource(status.dataset.stream);
    const say = (text) => { status.textContent = text; };
    source.addEventListener("open", () => say("Live: new events appear at the top as they are committed."));
    source.addEventListener("event", (message) => {
      const empty = document.getElementById("no-events");
      if (empty) empty.remove();
      rows.insertBefore(eventRow(JSON.parse(message.data)), rows.firstChild);
      while (rows.children.length > 500) rows.removeChild(rows.lastChild);
    });
    source.addEventListener("end", () => {
      source.close();
      say("The live tail ended (the session expired or the API stopped): reload the page.");
    });
    source.addEventListener("error", () => {
      if (source.readyState !== EventSource.CLOSED) say("Live tail interrupted: reconnecting…");
    });
  }

  // "Select all" for the checkboxes of a list (hidden without JavaScript: nothing to do then).
  function selectAll(box) {
    box.hidden = false;
    box.addEventListener("change", () => {
      document.querySelectorAll('input[type="checkbox"][name="' + box.dataset.selectAll + '"]')
        .forEach((c) => { c.checked = box.checked; });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-refresh]").forEach(refresh);
    document.querySelectorAll("[data-stream]").forEach(tail);
    document.querySelectorAll("[data-select-all]").forEach(selectAll);
  });
})();
