/* Audience list: each saved audience's size, counted after the page is shown.
 *
 * Counting an audience of a large brand takes seconds, so the page is rendered without the sizes: every
 * <td class="audience-size" data-size-url="…"> starts with data-state="pending" ("Counting…"). This asks each
 * data-size-url (GET, the session's cookie; the answer is {"count": n, "counted_at": iso}) in the rows' order,
 * at most MAX_AT_ONCE at a time so one page never runs more than that many counts on the database, and fills
 * the cell. Its data-state then says where it stands, as in audience_preview.js: ready (data-count holds the
 * number), invalid (a 400: the saved conditions no longer fit the brand) or failed (anything else; not
 * retried, reloading the page counts again). The texts come translated from the table's data-label-*. */
(function () {
  "use strict";
  var table = document.getElementById("audiences");
  if (!table || !window.fetch) { return; }
  var MAX_AT_ONCE = 2;
  var cells = Array.prototype.slice.call(table.querySelectorAll("td.audience-size[data-size-url]"));
  var next = 0;

  function grouped(count) {
    return String(count).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }

  function show(cell, state, text) {
    cell.setAttribute("data-state", state);
    cell.textContent = text;
  }

  function count(cell) {
    return fetch(cell.getAttribute("data-size-url"), {
      credentials: "same-origin",
      cache: "no-store",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.ok && typeof data.count === "number") {
          cell.setAttribute("data-count", String(data.count));
          show(cell, "ready", grouped(data.count));
        } else if (response.status === 400) {
          show(cell, "invalid", table.getAttribute("data-label-invalid"));
        } else {
          show(cell, "failed", table.getAttribute("data-label-failed"));
        }
      });
    }).catch(function () {
      show(cell, "failed", table.getAttribute("data-label-failed"));
    });
  }

  // Each of MAX_AT_ONCE lanes takes the next cell when its count has answered.
  function lane() {
    if (next >= cells.length) { return; }
    var cell = cells[next];
    next += 1;
    count(cell).then(lane);
  }

  for (var i = 0; i < MAX_AT_ONCE; i++) { lane(); }
}());
