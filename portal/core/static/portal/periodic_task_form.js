// django-celery-beat's periodic task form: show the chosen crontab in words under the field.
// A file, not django-celery-beat's inline script: the Content-Security-Policy allows none.
(function ($) {
  var help = document.getElementById("periodic-task-overrides").dataset.crontabHelp;
  var readable = JSON.parse(document.getElementById("readable-crontabs").textContent);

  $(".field-crontab_translation").hide();
  $(".field-crontab").change(function () {
    var words = "Translation: " + readable[$("#id_crontab").val()];
    $(".field-crontab .help").text(help).append("<br>", document.createTextNode(words));
  });
})(django.jQuery);
