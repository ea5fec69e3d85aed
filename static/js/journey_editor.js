/* The journey editor (templates/marketing/journey_edit.html): show only the inputs of the chosen trigger
 * ([data-for-trigger], a space-separated list) and, in each step, of the chosen kind ([data-for-kind], a space-separated list).
 * Without this script every input shows; the server reads only the chosen kind's. */
(function () {
  "use strict";
  function update(form) {
    var trigger = form.querySelector("select[name=trigger]");
    form.querySelectorAll("[data-for-trigger]").forEach(function (box) {
      box.hidden = !trigger || box.getAttribute("data-for-trigger").split(" ").indexOf(trigger.value) < 0;
    });
    form.querySelectorAll(".journey-step").forEach(function (step) {
      var kind = step.querySelector("select[data-input=kind]");
      step.querySelectorAll("[data-for-kind]").forEach(function (box) {
        box.hidden = !kind || box.getAttribute("data-for-kind").split(" ").indexOf(kind.value) < 0;
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("journey-editor");
    if (!form) { return; }
    form.addEventListener("change", function () { update(form); });
    update(form);
  });
})();
