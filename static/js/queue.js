// The queue's bulk form, progressively enhanced: a "select all" box in the header and only the field the chosen
// action needs. Without JavaScript every field shows and each request is ticked on its own.
(function () {
  "use strict";
  var form = document.getElementById("bulk");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="bulk"]'));
  var head = document.querySelector("table.queue thead th.select");
  if (head && boxes.length) {
    var all = document.createElement("input");
    all.type = "checkbox";
    all.id = "pick-all";
    all.setAttribute("aria-label", "Select all requests on this page");
    head.textContent = "";
    head.appendChild(all);
    all.addEventListener("change", function () {
      boxes.forEach(function (box) { box.checked = all.checked; });
    });
  }
  var action = form.querySelector('select[name="bulk_action"]');
  var fields = {
    assign: form.querySelector('select[name="assignee"]'),
    extend: form.querySelector('textarea[name="reason"]')
  };
  function show() {
    Object.keys(fields).forEach(function (name) {
      var field = fields[name] && fields[name].closest(".field");
      if (field) { field.hidden = action.value !== name; }
    });
  }
  if (action) { action.addEventListener("change", show); show(); }
})();
