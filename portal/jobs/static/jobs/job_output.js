// The admin job page: follow a running job's output through the jobs API's SSE stream
// (GET /api/jobs/{id}/stream/?after=N; "job_event" frames, then one "end" frame).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var output = document.getElementById("job-output");
  var state = document.getElementById("job-output-state");
  if (!output || !output.dataset.live || !window.EventSource) {
    return;
  }
  var url = output.dataset.stream + "?after=" + encodeURIComponent(output.dataset.after || "0");
  var source = new EventSource(url);
  source.addEventListener("job_event", function (message) {
    var event = JSON.parse(message.data);
    if (!event.stdout) {
      return;
    }
    var atBottom = output.scrollTop + output.clientHeight >= output.scrollHeight - 4;
    output.textContent += (output.textContent ? "\n" : "") + event.stdout;
    if (atBottom) {
      output.scrollTop = output.scrollHeight;
    }
  });
  source.addEventListener("end", function (message) {
    source.close();
    var status = JSON.parse(message.data).status;
    state.textContent = "finished: " + status + " (reload the page for the summary)";
    state.dataset.status = status;
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) {
      state.textContent = "the live output stopped; reload the page to see the rest";
    }
  });
});
