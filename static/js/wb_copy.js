/* Workbench: copy a text box or link to the clipboard. A button with data-copy="<id of a textarea/input>"
   copies that element's value, one with data-copy-text="<text>" copies that text (a WeCom id on the care
   list); data-copied / data-failed hold the (translated) labels shown afterwards. */
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
    var button = event.target.closest ? event.target.closest("[data-copy],[data-copy-text]") : null;
    if (!button) { return; }
    var source = button.hasAttribute("data-copy-text") ? null : document.getElementById(button.getAttribute("data-copy"));
    if (!source) {
      if (!button.hasAttribute("data-copy-text")) { return; }
      source = document.createElement("textarea");  // off-screen, for the execCommand fallback
      source.value = button.getAttribute("data-copy-text");
      source.setAttribute("readonly", "");
      source.style.position = "fixed";
      source.style.left = "-9999px";
      document.body.appendChild(source);
    }
    event.preventDefault();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(source.value).then(function () { report(button, true); },
        function () { fallback(button, source); });
    } else {
      fallback(button, source);
    }
  });
}());
