/* Audience editor: the audience's size, counted live while the conditions are edited.
 *
 * Every condition field of <form id="audience-form"> names its place in the audience definition
 * (data-def="behaviour.0.days", a number being a list index) and how its value reads (data-kind: ids, strs,
 * codes, str, int, date, bool, or json for the "other conditions" box, whose object the fields are laid
 * over). The definition built here is the one the server builds from the same fields on saving
 * (marketing/forms.py). After each change (debounced) it is posted to the form's data-preview-url with
 * the session's CSRF token; the answer {"count": n} is shown in #audience-size, whose data-state says where
 * it stands: pending, ready, invalid or failed. All text comes translated from the page's data-label-* and
 * data-note-* attributes. */
(function () {
  "use strict";
  var form = document.getElementById("audience-form");
  var output = document.getElementById("audience-size");
  var note = document.getElementById("audience-size-note");
  if (!form || !output || !window.fetch) { return; }
  var WAIT_MS = 400;
  var timer = null;
  var sequence = 0;
  var controller = null;

  function put(target, path, value) {
    var parts = path.split(".");
    var node = target;
    for (var i = 0; i < parts.length - 1; i++) {
      var key = /^\d+$/.test(parts[i]) ? Number(parts[i]) : parts[i];
      if (node[key] === undefined) { node[key] = /^\d+$/.test(parts[i + 1]) ? [] : {}; }
      node = node[key];
    }
    node[parts[parts.length - 1]] = value;
  }

  function valueOf(fields, kind) {
    var first = fields[0];
    if (kind === "ids" || kind === "strs") {
      var picked = [];
      fields.forEach(function (field) {
        if (field.tagName === "SELECT") {
          Array.prototype.forEach.call(field.selectedOptions, function (option) { picked.push(option.value); });
        } else if (field.checked) {
          picked.push(field.value);
        }
      });
      if (!picked.length) { return undefined; }
      return kind === "ids" ? picked.map(Number) : picked;
    }
    var text = (first.value || "").trim();
    if (text === "") { return undefined; }
    if (kind === "codes") {
      var codes = text.split(/[\s,，、]+/).filter(function (code) { return code !== ""; });
      return codes.length ? codes : undefined;
    }
    if (kind === "int") { return /^-?\d+$/.test(text) ? Number(text) : text; }
    if (kind === "bool") { return text === "true"; }
    return text;
  }

  // The definition the form says, or null when the "other conditions" box is not a JSON object.
  function definition() {
    var base = {};
    var groups = {};
    var order = [];
    Array.prototype.forEach.call(form.querySelectorAll("[data-def]"), function (field) {
      var kind = field.getAttribute("data-kind");
      if (kind === "json") {
        var text = field.value.trim();
        if (text === "") { return; }
        try { base = JSON.parse(text); } catch (error) { base = null; }
        return;
      }
      var path = field.getAttribute("data-def");
      if (!groups[path]) { groups[path] = {kind: kind, fields: []}; order.push(path); }
      groups[path].fields.push(field);
    });
    if (base === null || typeof base !== "object" || Array.isArray(base)) { return null; }
    var taken = {};
    order.forEach(function (path) {
      var value = valueOf(groups[path].fields, groups[path].kind);
      if (value === undefined) { return; }
      var key = path.split(".")[0];
      if (!taken[key]) { delete base[key]; taken[key] = true; }
      put(base, path, value);
    });
    return base;
  }

  function show(state, text, noteKey) {
    output.setAttribute("data-state", state);
    if (text !== null) { output.textContent = text; }
    if (note && noteKey) { note.textContent = note.getAttribute("data-note-" + noteKey) || ""; }
  }

  function csrfToken() {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function count() {
    var body = definition();
    if (body === null) { show("invalid", output.getAttribute("data-label-invalid"), "invalid"); return; }
    sequence += 1;
    var mine = sequence;
    if (controller) { controller.abort(); }
    controller = window.AbortController ? new AbortController() : null;
    fetch(form.getAttribute("data-preview-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken()},
      body: JSON.stringify({brand: form.getAttribute("data-brand"), definition: body}),
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (mine !== sequence) { return; }
        if (response.ok && typeof data.count === "number") {
          output.setAttribute("data-count", String(data.count));
          show("ready", String(data.count), "ready");
        } else if (response.status === 400) {
          output.setAttribute("data-count", "");
          show("invalid", output.getAttribute("data-label-invalid"), "invalid");
        } else if (response.status === 429) {
          show("failed", output.getAttribute("data-label-failed"), "throttled");
          var wait = Number(response.headers.get("Retry-After")) || 5;
          timer = setTimeout(count, wait * 1000);
        } else {
          show("failed", output.getAttribute("data-label-failed"), null);
        }
      });
    }).catch(function (error) {
      if (error && error.name === "AbortError") { return; }
      if (mine === sequence) { show("failed", output.getAttribute("data-label-failed"), null); }
    });
  }

  function changed(event) {
    var target = event.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-def")) { return; }
    show("pending", output.getAttribute("data-label-counting"), null);
    clearTimeout(timer);
    timer = setTimeout(count, WAIT_MS);
  }

  form.addEventListener("input", changed);
  form.addEventListener("change", changed);
}());
