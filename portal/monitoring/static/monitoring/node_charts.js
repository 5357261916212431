// Charts of a node's metrics (portal/monitoring/templates/monitoring/node.html): each canvas
// names its API call in data-url (GET /api/nodes/{id}/metrics?hours=); the chart plots cpu,
// memory and disk (raw samples, or the 5-minute rollups' averages) and reports how many
// points it drew in the canvas's data-points attribute.
(function () {
  "use strict";
  var SERIES = [
    ["cpu_percent", "cpu %", "#1565c0"],
    ["memory_percent", "memory %", "#2e7d32"],
    ["disk_percent", "disk %", "#ef6c00"],
  ];

  function label(ms, hours) {
    var d = new Date(ms);
    var pad = function (n) { return String(n).padStart(2, "0"); };
    var time = pad(d.getHours()) + ":" + pad(d.getMinutes());
    return hours > 48 ? d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) : time;
  }

  function draw(canvas, body) {
    var hours = Number(canvas.dataset.hours);
    // Other APIs of the same history answer otherwise (the fleet's VM metrics: a list of
    // points with a "timestamp"): an array is the points; data-time-key names the time.
    var points = Array.isArray(body) ? body : body.points || [];
    var timeKey = canvas.dataset.timeKey || "at";
    var datasets = SERIES.map(function (serie) {
      return {
        label: serie[1],
        borderColor: serie[2],
        backgroundColor: serie[2],
        borderWidth: 1.5,
        pointRadius: points.length > 60 ? 0 : 2,
        data: points.map(function (point) {
          return { x: Date.parse(point[timeKey]), y: point[serie[0]] };
        }),
      };
    });
    var chart = new window.Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        parsing: false,
        scales: {
          x: { type: "linear", ticks: { callback: function (v) { return label(v, hours); } } },
          y: { min: 0, max: 100, title: { display: true, text: "%" } },
        },
        plugins: {
          tooltip: { callbacks: { title: function (items) {
            return items.length ? new Date(items[0].parsed.x).toLocaleString() : "";
          } } },
        },
      },
    });
    canvas.dataset.points = String(chart.data.datasets[0].data.length);
    if (body.resolution) { canvas.dataset.resolution = body.resolution; }
    var what = { raw: " (samples)", "5m": " (5-minute averages)" }[body.resolution] || "";
    note(canvas, points.length
      ? points.length + " points" + what
      : "No data in this range yet.");
  }

  function note(canvas, text) {
    var el = document.querySelector('.chart-note[data-for="' + canvas.id + '"]');
    if (el) { el.textContent = text; }
  }

  function load(canvas) {
    fetch(canvas.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (body) { draw(canvas, body); })
      .catch(function (error) {
        canvas.dataset.error = String(error);
        note(canvas, "Could not load the metrics: " + error);
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("canvas[data-url]").forEach(load);
  });
})();
