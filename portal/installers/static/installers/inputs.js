/* An installer's form: show only the inputs whose visible_if holds.
 *
 * The expressions are never evaluated here: on every change the form's values are posted to
 * the row's installer's visibility endpoint (data-visibility-url), which runs the server's
 * evaluator, and the rows it names hidden get the `hidden` attribute. Without this script
 * every input shows and the server ignores the hidden ones when it checks the form.
 */
(function () {
  "use strict";

  var form = document.getElementById("installer-form");
  if (!form || !form.dataset.visibilityUrl) return;
  var url = form.dataset.visibilityUrl;
  var csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  var rows = form.querySelectorAll(".installer-input[data-input]");
  var pending = null;
  var sent = 0;

  function apply(body, number) {
    if (number !== sent) return; // an answer to an older request
    var hidden = {};
    body.hidden.forEach(function (name) { hidden[name] = true; });
    rows.forEach(function (row) { row.hidden = !!hidden[row.dataset.input]; });
  }

  function values() {
    var data = new FormData(form);
    // Secrets never travel for this: a password's value decides no visibility.
    form.querySelectorAll("input[type=password]").forEach(function (input) {
      data.delete(input.name);
    });
    return data;
  }

  function refresh() {
    var number = ++sent;
    fetch(url, {
      method: "POST",
      body: values(),
      headers: { "X-CSRFToken": csrf, Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) { if (body) apply(body, number); })
      .catch(function () { /* keep the rows as they are: the server checks on submit */ });
  }

  function later() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 150);
  }

  form.addEventListener("change", refresh);
  form.addEventListener("input", later);
  refresh();
})();
