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
})();
