// The customer's VM page (portal/fleet/templates/fleet/mine.html): the restart and rebuild
// forms are sent with fetch (POST /api/vms/{id}/restart|rebuild, the session's CSRF token)
// and their answer is shown next to them: the job started (202) or why not (409 busy, …).
// The charts are monitoring's (node_charts.js).
(function () {
  "use strict";

  function answer(form, text, ok) {
    var out = form.parentElement.querySelector('[data-testid="vm-action-result"]');
    out.textContent = text;
    out.dataset.ok = ok ? "true" : "false";
  }

  function send(event) {
    var form = event.currentTarget;
    event.preventDefault();
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "X-CSRFToken": form.querySelector('input[name="csrfmiddlewaretoken"]').value,
      },
    })
      .then(function (response) {
        return response.json().then(function (body) { return [response, body]; });
      })
      .then(function (pair) {
        var response = pair[0], body = pair[1];
        if (response.ok) {
          answer(form, (body.message || "Started") + " (job " + body.job + ").", true);
        } else {
          answer(form, body.message || "HTTP " + response.status, false);
        }
      })
      .catch(function (error) { answer(form, String(error), false); })
      .finally(function () { button.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.vm-action").forEach(function (form) {
      form.addEventListener("submit", send);
    });
  });
})();
