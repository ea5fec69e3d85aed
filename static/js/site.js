/* Behaviour every page shares, wired here rather than in inline handlers (the Content-Security-Policy allows
   no inline script): a <select data-autosubmit> sends its form when changed; a <button data-once> is disabled
   right after its click has submitted the form, so a second tap sends nothing twice. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field.matches && field.matches("select[data-autosubmit]") && field.form) { field.form.submit(); }
  });
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-once]") : null;
    if (button) { setTimeout(function () { button.disabled = true; }, 0); }
  });
}());
