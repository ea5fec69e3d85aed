/* Workbench: copy a text box or link to the clipboard. A button with data-copy="<id of a textarea/input>"
   copies that element's value; data-copied / data-failed hold the (translated) labels shown afterwards. */
(function () {
  "use strict";
  function report(button, ok) {
    var label = button.getAttribute(ok ? "data-copied" : "data-failed");
    if (label) { button.textContent = label; }
  }
  function fallback(button, source) {
    try {
      source.focus();
      source.select();
      report(button, document.execCommand("copy"));
    } catch (error) {
      report(button, false);
    }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    event.preventDefault();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(function () { report(button, true); },
        function () { fallback(button, source); });
    } else {
      fallback(button, source);
    }
  });
}());
