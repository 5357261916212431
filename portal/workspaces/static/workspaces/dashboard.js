/* Workspaces dashboard: live cards, the create dialog, and each card's job progress.
 *
 * Reads: /workspaces/state/ every 2 s (the cards' live state, including which buttons the
 * server allows), the job's Server-Sent Events at /api/jobs/{id}/stream/ for the progress
 * bar. Writes: only the REST API (session cookie + CSRF token). No rule is decided here:
 * the server says what each card may offer, and the API's error message is shown as is.
 * Everything from the server is shown with textContent, never parsed as HTML (the card
 * fragments excepted: those are the server's own escaped templates).
 */
(function () {
  "use strict";

  var root = document.getElementById("ws-dashboard");
  if (!root) return;

  var POLL_MS = 2000;
  var MAX_STREAMS = 3; // keep HTTP/1.1 connections free for the poll and the buttons
  // The logs are stored by the job's result handler, which then lets go of the workspace;
  // only if it never does (a lost handler) are the logs shown as they are after this long.
  var LOG_GRACE_MS = 60000;
  var JOB_ENDED = ["successful", "failed", "error", "canceled", "timeout", "lost", "refused"];
  var API = root.dataset.apiUrl;
  var stateUrl = root.dataset.stateUrl;
  var cardUrl = root.dataset.cardUrl; // ".../0/card/"
  var showCustomer = root.dataset.showCustomer === "1";
  var cardsBox = document.getElementById("ws-cards");
  var empty = document.getElementById("ws-empty");
  var notice = document.getElementById("ws-notice");
  var form = document.getElementById("ws-create-form");
  var dialog = document.getElementById("ws-create-dialog");
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;

  var streams = {};      // job id -> progress of that job (one EventSource, shared by its cards)
  var waitingLogs = {};  // workspace id -> {job, endedAt}
  var inserting = {};    // workspace id -> its card is being fetched
  var lastState = {};    // workspace id -> last state applied
  var polling = false;

  // --- helpers ---------------------------------------------------------------------------

  function byTestId(el, id) { return el.querySelector('[data-testid="' + id + '"]'); }
  function cardEl(id) { return document.getElementById("ws-card-" + id); }
  function setText(el, text) { if (el && el.textContent !== text) el.textContent = text; }
  function when(iso) { return iso ? new Date(iso).toLocaleString() : ""; }

  function api(method, path, body) {
    var options = {method: method, credentials: "same-origin",
                   headers: {"Accept": "application/json", "X-CSRFToken": csrf}};
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(API + path, options).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!response.ok) {
          var error = new Error((data && data.message) || ("The server answered " + response.status + "."));
          error.body = data;
          throw error;
        }
        return data;
      });
    });
  }

  function showNotice(text) { setText(notice, text); notice.hidden = !text; }

  function cardError(el, text) {
    var box = byTestId(el, "ws-error");
    setText(box, text || "");
    box.hidden = !text;
  }

  // While a request of the card is under way its buttons are disabled: one click, one job.
  function whilePosting(el, promise) {
    el.dataset.posting = "1";
    el.querySelectorAll(".ws-actions button, .ws-confirm button").forEach(function (b) { b.disabled = true; });
    cardError(el, "");
    return promise.then(function (data) { return data; }, function (error) {
      cardError(el, error.message);
      return null;
    }).then(function (data) {
      delete el.dataset.posting;
      el.querySelectorAll(".ws-actions button, .ws-confirm button").forEach(function (b) { b.disabled = false; });
      return data;
    });
  }

  // --- live state --------------------------------------------------------------------------

  function apply(ws) {
    var el = cardEl(ws.id);
    if (!el) { insertCard(ws); return; }
    var previous = lastState[ws.id];
    lastState[ws.id] = ws;
    el.dataset.status = ws.status;
    el.dataset.busy = ws.busy ? "1" : "0";
    var badge = byTestId(el, "ws-status");
    badge.className = "ws-badge status-" + ws.status;
    badge.dataset.status = ws.status;
    setText(badge, ws.status_label);
    el.querySelectorAll("[data-field]").forEach(function (field) {
      var value = ws[field.dataset.field];
      setText(field, value === null || value === undefined || value === "" ? (field.dataset.empty || "") : String(value));
    });
    var details = byTestId(el, "ws-reason-details");
    if (details) details.hidden = !ws.status_reason;
    var open = byTestId(el, "ws-open");
    open.hidden = !ws.running;
    open.href = ws.url;
    el.querySelectorAll("[data-op]").forEach(function (button) { button.hidden = !ws.can[button.dataset.op]; });
    if (!ws.can.delete) byTestId(el, "ws-delete-confirm-box").hidden = true;
    if (!ws.can.password) hidePassword(el);
    if (ws.job) followJob(ws.job, ws.id);
    checkLogs(el, ws);
    var history = byTestId(el, "ws-history");
    if (history.open && previous && (previous.status_changed_at !== ws.status_changed_at ||
        previous.status_reason !== ws.status_reason ||
        (previous.job && previous.job.id) !== (ws.job && ws.job.id) || previous.busy !== ws.busy)) {
      loadHistory(el, ws.id);
    }
  }

  function insertCard(ws) {
    lastState[ws.id] = ws;
    if (inserting[ws.id]) return;
    inserting[ws.id] = true;
    var url = cardUrl.replace("/0/", "/" + ws.id + "/") + (showCustomer ? "?customer=1" : "");
    fetch(url, {credentials: "same-origin"}).then(function (response) {
      return response.ok ? response.text() : null;
    }).then(function (html) {
      if (!html || cardEl(ws.id)) return;
      var template = document.createElement("template");
      template.innerHTML = html.trim();
      var el = template.content.firstElementChild;
      cardsBox.prepend(el);
      empty.hidden = true;
      el.classList.add("ws-flash");
      if (lastState[ws.id]) apply(lastState[ws.id]);
    }).catch(function () { /* the next poll tries again */ }).then(function () {
      delete inserting[ws.id];
    });
  }

  function removeCard(el) {
    var id = el.dataset.workspaceId;
    delete lastState[id];
    delete waitingLogs[id];
    el.remove();
  }

  // Usage against the plan ("3 of 5 workspaces"), kept live with the cards.
  function applyUsage(row) {
    var el = document.querySelector('[data-testid="ws-plan-usage"][data-customer="' + row.customer_id + '"]');
    if (!el) return;
    setText(byTestId(el, "ws-plan-count"), row.text);
    setText(byTestId(el, "ws-plan-disk"), row.disk_used_text);
    el.classList.toggle("ws-plan-full", row.full);
    byTestId(el, "ws-plan-full").hidden = !row.full;
  }

  function refresh() {
    if (polling) return;
    polling = true;
    fetch(stateUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (response.redirected || type.indexOf("application/json") === -1) {
          window.location.reload(); // signed out: the login page takes over
          throw new Error("signed out");
        }
        if (!response.ok) throw new Error("the server answered " + response.status);
        return response.json();
      })
      .then(function (data) {
        var seen = {};
        data.workspaces.forEach(function (ws) { seen[ws.id] = true; apply(ws); });
        cardsBox.querySelectorAll('[data-testid="ws-card"]').forEach(function (el) {
          if (!seen[el.dataset.workspaceId]) removeCard(el);
        });
        empty.hidden = data.workspaces.length > 0;
        (data.usage || []).forEach(applyUsage);
        showNotice("");
      })
      .catch(function (error) { showNotice("Could not refresh the workspaces: " + error.message); })
      .then(function () { polling = false; });
  }

  // --- job progress (Server-Sent Events) ----------------------------------------------------

  function followJob(job, workspaceId) {
    var el = cardEl(workspaceId);
    var progress = streams[job.id];
    if (!progress) {
      if (!job.active && (!el || el.dataset.job !== String(job.id))) return; // ended before we saw it
      progress = streams[job.id] = {
        id: job.id, label: job.label, status: job.status, expected: job.expected_tasks,
        started: 0, task: "", lines: [], cards: {}, source: null, ended: false,
      };
    }
    progress.cards[workspaceId] = true;
    if (job.expected_tasks && !progress.expected) progress.expected = job.expected_tasks;
    if (el && el.dataset.job !== String(job.id)) {
      var previous = streams[el.dataset.job];
      if (previous && previous.ended) delete streams[previous.id]; // nothing left to show
      el.dataset.job = String(job.id);
      render(progress);
    }
    if (!job.active && !progress.ended && !progress.source) {
      // The poll saw the end and no stream is open (never opened, or refused): trust it.
      // An open stream is left to deliver the job's last events and its end frame.
      finish(progress, job.status);
    }
    openStreams();
  }

  function openStreams() {
    var open = 0;
    Object.keys(streams).forEach(function (id) { if (streams[id].source) open += 1; });
    Object.keys(streams).forEach(function (id) {
      var progress = streams[id];
      if (open < MAX_STREAMS && !progress.source && !progress.ended && !progress.gaveUp) {
        openStream(progress);
        open += 1;
      }
    });
  }

  function openStream(progress) {
    var source = new EventSource(API + "jobs/" + progress.id + "/stream/");
    progress.source = source;
    source.addEventListener("job_event", function (message) {
      onJobEvent(progress, JSON.parse(message.data));
    });
    source.addEventListener("end", function (message) {
      finish(progress, JSON.parse(message.data).status);
    });
    source.onerror = function () {
      // A dropped connection reconnects by itself (resuming with Last-Event-ID); a refused
      // one (404, 403) closes: the poll then tells when the job is over.
      if (source.readyState === EventSource.CLOSED) {
        progress.source = null;
        progress.gaveUp = true;
        openStreams();
      }
    };
  }

  function onJobEvent(progress, event) {
    progress.status = "running";
    if (event.event === "playbook_on_task_start") {
      progress.started += 1;
      progress.task = event.task || "";
    } else if (/^runner_on_(ok|failed|skipped|unreachable)$/.test(event.event)) {
      var outcome = event.event.slice("runner_on_".length);
      if (outcome === "ok" && event.changed) outcome = "changed";
      progress.lines.push((event.host || "?") + " · " + (event.task || "") + " · " + outcome);
      if (progress.lines.length > 5) progress.lines.shift();
    }
    scheduleRender(progress);
  }

  function finish(progress, status) {
    progress.ended = true;
    progress.status = status;
    if (progress.source) { progress.source.close(); progress.source = null; }
    render(progress);
    openStreams();
    // The owner's result handler runs right after the job ends: look twice.
    refresh();
    window.setTimeout(refresh, 600);
  }

  function percent(progress) {
    if (progress.ended) return 100;
    if (progress.expected) return Math.min(95, Math.round(100 * progress.started / progress.expected));
    return Math.round(90 * (1 - Math.pow(0.85, progress.started))); // no estimate yet
  }

  function scheduleRender(progress) {
    if (progress.renderPending) return;
    progress.renderPending = true;
    window.setTimeout(function () { progress.renderPending = false; render(progress); }, 100);
  }

  function render(progress) {
    Object.keys(progress.cards).forEach(function (workspaceId) {
      var el = cardEl(workspaceId);
      if (!el || el.dataset.job !== String(progress.id)) return; // the card follows a newer job
      var box = byTestId(el, "ws-progress");
      var value = percent(progress);
      box.hidden = false;
      box.dataset.job = String(progress.id);
      box.dataset.jobStatus = progress.status;
      box.dataset.tasksStarted = String(progress.started);
      var bar = byTestId(el, "ws-progress-bar");
      bar.setAttribute("aria-valuenow", String(value));
      bar.firstElementChild.style.width = value + "%";
      var what = progress.label + " (job " + progress.id + ")";
      setText(byTestId(el, "ws-progress-label"), progress.ended
        ? what + ": " + progress.status
        : what + ": " + (progress.task || (progress.status === "running" ? "starting" : "waiting for a worker")));
      setText(byTestId(el, "ws-progress-count"), progress.started + (progress.expected ? " of ~" + progress.expected : "") + " tasks");
      var list = byTestId(el, "ws-progress-tasks");
      list.replaceChildren.apply(list, progress.lines.map(function (line) {
        var item = document.createElement("li");
        item.textContent = line;
        return item;
      }));
    });
  }

  // --- card buttons ------------------------------------------------------------------------

  // Follow the job the API just launched at once: its stream replays every event from the
  // first, so even a job that ends before the next poll fills the bar.
  function launched(id, job, operation) {
    followJob({id: job, status: "pending", label: operation, active: true, expected_tasks: null}, id);
    refresh();
  }

  function operate(el, id, operation) {
    whilePosting(el, api("POST", "workspaces/" + id + "/" + operation + "/")).then(function (data) {
      if (data) launched(id, data.job, operation);
    });
  }

  function deleteWorkspace(el, id) {
    byTestId(el, "ws-delete-confirm-box").hidden = true;
    whilePosting(el, api("DELETE", "workspaces/" + id + "/")).then(function (data) {
      if (data) refresh();
    });
  }

  function revealPassword(el, id) {
    whilePosting(el, api("GET", "workspaces/" + id + "/password/")).then(function (data) {
      if (!data) return;
      setText(byTestId(el, "ws-password"), data.password);
      byTestId(el, "ws-password-box").hidden = false;
    });
  }

  function hidePassword(el) {
    setText(byTestId(el, "ws-password"), "");
    byTestId(el, "ws-password-box").hidden = true;
  }

  function fetchLogs(el, id) {
    whilePosting(el, api("POST", "workspaces/" + id + "/logs/")).then(function (data) {
      if (!data) return;
      waitingLogs[id] = {job: data.job, endedAt: null, since: Date.now()};
      byTestId(el, "ws-logs-box").hidden = false;
      setText(byTestId(el, "ws-logs-status"), "Fetching the recent logs (job " + data.job + ") …");
      launched(id, data.job, "logs");
    });
  }

  // The logs are there once the logs job's result handler let go of the workspace.
  function checkLogs(el, ws) {
    var waiting = waitingLogs[ws.id];
    if (!waiting) return;
    var current = ws.job ? ws.job.id : null;
    if (current === waiting.job) {
      if (ws.job.active) return;
      if (!waiting.endedAt) {
        waiting.endedAt = Date.now();
        setText(byTestId(el, "ws-logs-status"), "The logs job ended " + ws.job.status + "; storing its result …");
      }
      if (Date.now() - waiting.endedAt < LOG_GRACE_MS) return;
    }
    delete waitingLogs[ws.id];
    Promise.all([api("GET", "workspaces/" + ws.id + "/logs/"), api("GET", "jobs/" + waiting.job + "/")])
      .then(function (answers) {
        var logs = answers[0], job = answers[1];
        // A refresh asked for before the logs job existed shows the workspace without it:
        // logs older than the job are not its result yet, so look again at the next refresh.
        // That refresh may even come before the job ran: wait while it has not ended too.
        var stale = !logs.logs_fetched_at || new Date(logs.logs_fetched_at) < new Date(job.created_at);
        var pending = job.status === "successful" || JOB_ENDED.indexOf(job.status) < 0;
        if (stale && pending && Date.now() - waiting.since < LOG_GRACE_MS) {
          waitingLogs[ws.id] = waiting;
          return;
        }
        var status = job.status === "successful"
          ? "Fetched " + when(logs.logs_fetched_at) + "."
          : "The logs job ended " + job.status + (logs.logs_fetched_at ? "; these are from " + when(logs.logs_fetched_at) + "." : ".");
        setText(byTestId(el, "ws-logs-status"), status);
        setText(byTestId(el, "ws-logs"), logs.recent_logs || "(no log lines)");
      })
      .catch(function (error) { setText(byTestId(el, "ws-logs-status"), error.message); });
  }

  function loadHistory(el, id) {
    api("GET", "workspaces/" + id + "/history/?page_size=50").then(function (data) {
      var list = byTestId(el, "ws-history-list");
      list.replaceChildren.apply(list, data.results.map(function (event) {
        var item = document.createElement("li");
        item.dataset.testid = "ws-history-item";
        var time = document.createElement("time");
        time.dateTime = event.at;
        time.textContent = when(event.at);
        var change = event.from_status && event.from_status !== event.to_status
          ? event.from_status + " → " + event.to_status : event.to_status;
        var message = event.message || "";
        var mentionsJob = event.job && message.indexOf("job " + event.job) !== -1;
        var extra = [event.by ? "by " + event.by : "", event.job && !mentionsJob ? "job " + event.job : ""]
          .filter(Boolean).join(", ");
        item.append(time, change + (message ? ": " + message : "") + (extra ? " (" + extra + ")" : ""));
        return item;
      }));
    }).catch(function (error) { cardError(el, error.message); });
  }

  cardsBox.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    var el = button && button.closest('[data-testid="ws-card"]');
    if (!el || el.dataset.posting) return;
    var id = el.dataset.workspaceId;
    var operation = button.dataset.op;
    var act = button.dataset.act;
    if (operation === "start" || operation === "stop" || operation === "restart") operate(el, id, operation);
    else if (operation === "logs") fetchLogs(el, id);
    else if (operation === "password") revealPassword(el, id);
    else if (operation === "delete") byTestId(el, "ws-delete-confirm-box").hidden = false;
    else if (act === "delete-cancel") byTestId(el, "ws-delete-confirm-box").hidden = true;
    else if (act === "delete-confirm") deleteWorkspace(el, id);
    else if (act === "password-hide") hidePassword(el);
  });

  // "toggle" does not bubble: listen in the capture phase.
  cardsBox.addEventListener("toggle", function (event) {
    var details = event.target;
    if (details.dataset && details.dataset.testid === "ws-history" && details.open) {
      var el = details.closest('[data-testid="ws-card"]');
      loadHistory(el, el.dataset.workspaceId);
    }
  }, true);

  // --- the create dialog -------------------------------------------------------------------

  var submit = document.getElementById("ws-create-submit");

  function clearErrors() {
    form.querySelectorAll("[data-error-for]").forEach(function (box) { box.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (input) { input.removeAttribute("aria-invalid"); });
  }

  function showErrors(error) {
    var errors = (error.body && error.body.errors && error.body.errors.length)
      ? error.body.errors : [{field: null, message: error.message}];
    errors.forEach(function (item) {
      var field = item.field && form.elements[item.field] ? item.field : "";
      var box = form.querySelector('[data-error-for="' + field + '"]');
      box.textContent = (box.textContent ? box.textContent + " " : "") + item.message;
      if (field) form.elements[field].setAttribute("aria-invalid", "true");
    });
  }

  document.getElementById("ws-new").addEventListener("click", function () {
    form.reset();
    clearErrors();
    submit.disabled = false;
    dialog.showModal();
    form.elements.name.focus();
  });
  document.getElementById("ws-create-cancel").addEventListener("click", function () { dialog.close(); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (submit.disabled) return; // a second click or Enter while the first create is posting
    submit.disabled = true;
    clearErrors();
    var body = {name: form.elements.name.value};
    var slug = form.elements.slug.value.trim();
    if (slug) body.slug = slug;
    if (form.elements.customer) body.customer = Number(form.elements.customer.value);
    if (form.elements.owner && form.elements.owner.value.trim()) body.owner = form.elements.owner.value.trim();
    api("POST", "workspaces/", body).then(function (workspace) {
      dialog.close();
      refresh();
      return workspace;
    }, showErrors).then(function () { submit.disabled = false; });
  });

  // --- go ----------------------------------------------------------------------------------

  refresh();
  window.setInterval(function () { if (!document.hidden) refresh(); }, POLL_MS);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
})();
