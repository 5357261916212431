// Count the time left down each second; the server's value stays correct on reload.
// A file, not an inline <script>: the Content-Security-Policy allows no inline scripts.
(function () {
  function tick() {
    document.querySelectorAll(".time-left").forEach(function (el) {
      var left = Math.max(0, Math.floor((Date.parse(el.dataset.expiry) - Date.now()) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor(left % 3600 / 60), s = left % 60;
      el.textContent = h + "h " + String(m).padStart(2, "0") + "m " + String(s).padStart(2, "0") + "s";
    });
  }
  setInterval(tick, 1000);

  // A session being prepared: look again every few seconds until it is active or failed.
  if (document.querySelector('[data-session][data-status="requested"], [data-session][data-status="provisioning"]')) {
    setTimeout(function () { window.location.reload(); }, 3000);
  }

  // "Extend by N minutes" (once): the API decides; the page reloads to show the new expiry.
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".lab-extend");
    if (!button) return;
    var card = button.closest("[data-session]");
    var error = card.querySelector(".lab-extend-error");
    var csrf = document.querySelector("#lab-csrf [name=csrfmiddlewaretoken]").value;
    button.disabled = true;
    fetch(button.dataset.url, {method: "POST", credentials: "same-origin",
                               headers: {"Accept": "application/json", "X-CSRFToken": csrf}})
      .then(function (response) {
        if (response.ok) { window.location.reload(); return null; }
        return response.json().catch(function () { return {message: "Error " + response.status}; });
      })
      .then(function (body) {
        if (!body) return;
        error.textContent = body.message || "The session could not be extended.";
        error.hidden = false;
        button.disabled = false;
      })
      .catch(function () {
        error.textContent = "The portal did not answer; try again.";
        error.hidden = false;
        button.disabled = false;
      });
  });
})();
