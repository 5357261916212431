// The fleet page (portal/fleet/templates/fleet/fleet.html): charts of the figures the page
// carries as JSON (#fleet-figures, GET /api/metrics/fleet's body), and the rollouts' wave
// progress, polled from data-url every few seconds while a rollout is not over. Each chart
// reports what it drew in its canvas's data-drawn attribute (the browser test reads it).
(function () {
  "use strict";
  var TIERS = ["starter", "pro", "enterprise"];
  var STATUS_COLORS = { online: "#2e7d32", offline: "#c62828", maintenance: "#ef6c00", error: "#6a1b9a" };
  var LIVE = ["pending", "in_progress", "paused"];
  var POLL_MS = 2000;

  function chart(canvas, config) {
    config.options = Object.assign({ animation: false, maintainAspectRatio: false }, config.options || {});
    var made = new window.Chart(canvas, config);
    canvas.dataset.drawn = String(made.data.datasets.reduce(function (n, set) { return n + set.data.length; }, 0));
    return made;
  }

  var DRAW = {
    revenue: function (canvas, figures) {
      var datasets = [{ label: "revenue", backgroundColor: "#1565c0",
        data: TIERS.map(function (tier) { return figures.revenue.by_tier[tier] || 0; }) }];
      if (figures.cost) {
        datasets.push({ label: "cost", backgroundColor: "#ef6c00",
          data: TIERS.map(function (tier) { return figures.cost.by_tier[tier] || 0; }) });
      }
      chart(canvas, { type: "bar", data: { labels: TIERS, datasets: datasets } });
    },
    status: function (canvas, figures) {
      var names = Object.keys(figures.vms.by_status);
      chart(canvas, { type: "doughnut", data: { labels: names, datasets: [{
        data: names.map(function (name) { return figures.vms.by_status[name]; }),
        backgroundColor: names.map(function (name) { return STATUS_COLORS[name] || "#777"; }),
      }] } });
    },
    version: function (canvas, figures) {
      var names = Object.keys(figures.vms.by_version);
      chart(canvas, { type: "bar", data: { labels: names, datasets: [{ label: "VMs",
        backgroundColor: "#455a64", data: names.map(function (name) { return figures.vms.by_version[name]; }) }] },
        options: { plugins: { legend: { display: false } } } });
    },
    usage: function (canvas, figures) {
      var hourly = figures.usage.last_30_days.hourly;
      var series = [["cpu_percent", "cpu %", "#1565c0"], ["memory_percent", "memory %", "#2e7d32"],
        ["disk_percent", "disk %", "#ef6c00"]];
      chart(canvas, { type: "line", data: { datasets: series.map(function (serie) {
        return { label: serie[1], borderColor: serie[2], backgroundColor: serie[2], borderWidth: 1.5,
          pointRadius: hourly.length > 60 ? 0 : 2,
          data: hourly.map(function (point) { return { x: Date.parse(point.hour), y: point[serie[0]] }; }) };
      }) }, options: { parsing: false, scales: {
        x: { type: "linear", ticks: { callback: function (v) { return new Date(v).toISOString().slice(5, 13).replace("T", " ") + "h"; } } },
        y: { min: 0, max: 100, title: { display: true, text: "%" } } } } });
      var note = document.querySelector('.chart-note[data-for="' + canvas.id + '"]');
      if (note) {
        note.textContent = hourly.length ? hourly.length + " hours" : "No rollups in the last 30 days yet.";
      }
    },
  };

  function text(root, selector, value) {
    var el = root.querySelector(selector);
    if (el) { el.textContent = String(value); }
  }

  function showRollout(root, rollout) {
    root.dataset.status = rollout.status;
    text(root, '[data-testid="rollout-status"]', rollout.status_label);
    text(root, '[data-testid="rollout-done"]', rollout.done);
    text(root, '[data-testid="rollout-failed"]', rollout.failed);
    root.querySelector('[data-testid="rollout-progress"]').value = rollout.percent;
    var list = root.querySelector('[data-testid="rollout-waves"]');
    list.textContent = "";
    rollout.waves.forEach(function (wave) {
      var item = document.createElement("li");
      item.dataset.wave = String(wave.wave);
      item.append("wave " + wave.wave + ": ");
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = wave.percent;
      item.append(bar, " " + wave.done + "/" + wave.total + " ");
      var detail = document.createElement("span");
      detail.className = "muted";
      detail.textContent = "(" + wave.by_status.updating + " updating, " + wave.by_status.soaking +
        " soaking, " + wave.by_status.failed + " failed)";
      item.append(detail);
      list.append(item);
    });
  }

  function poll(container) {
    var live = Array.prototype.some.call(container.querySelectorAll(".rollout"), function (el) {
      return LIVE.indexOf(el.dataset.status) >= 0;
    });
    if (!live) { return; }  // nothing moves any more: no polling
    fetch(container.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) {
        body.rollouts.forEach(function (rollout) {
          var root = container.querySelector('.rollout[data-rollout="' + rollout.id + '"]');
          if (root) { showRollout(root, rollout); }
        });
        container.dataset.polls = String(Number(container.dataset.polls || 0) + 1);
      })
      .catch(function (error) { container.dataset.error = String(error); })
      .finally(function () { window.setTimeout(function () { poll(container); }, POLL_MS); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var figures = JSON.parse(document.getElementById("fleet-figures").textContent);
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      try {
        DRAW[canvas.dataset.chart](canvas, figures);
      } catch (error) {
        canvas.dataset.error = String(error);
      }
    });
    var rollouts = document.getElementById("rollouts");
    if (rollouts) { window.setTimeout(function () { poll(rollouts); }, POLL_MS); }
  });
})();
