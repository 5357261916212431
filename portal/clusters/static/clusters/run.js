// A reprovision run's page: follow every node's transitions through the run's SSE stream
// (GET /clusters/runs/{id}/events?after=N; "transition" frames, then one "end" frame).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var live = document.getElementById("run-live");
  if (!live || !live.dataset.active || !window.EventSource) {
    return;
  }
  live.textContent = "following the run live…";
  var url = live.dataset.stream + "?after=" + encodeURIComponent(live.dataset.after || "0");
  var source = new EventSource(url);

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    return td;
  }

  source.addEventListener("transition", function (message) {
    var row = JSON.parse(message.data);
    var card = document.querySelector('[data-node-run="' + row.node_run + '"]');
    if (!card) {
      return; // a run-level row (the run's own status): shown by the end frame
    }
    var tr = document.createElement("tr");
    [row.at.replace("T", " ").slice(0, 19), row.from_status, row.status, row.reason, row.job, row.by]
      .forEach(function (value) { tr.appendChild(cell(value)); });
    card.querySelector('[data-role="node-history"]').appendChild(tr);
    var badge = card.querySelector('[data-role="node-status"]');
    badge.textContent = row.status;
    badge.className = "status status-" + row.status;
  });
  source.addEventListener("end", function (message) {
    source.close();
    var status = JSON.parse(message.data).status;
    var badge = document.getElementById("run-status");
    badge.textContent = status;
    badge.dataset.status = status;
    badge.className = "status status-" + status;
    live.textContent = "the run ended: " + status + " (reload the page for the reasons)";
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      live.textContent = "the live view stopped; reload the page to see the rest";
    }
  });
});
