// Polls the deletion progress of one erasure request (counts and states only) and reloads the page when the
// state changes. Progressive enhancement: without JavaScript a <noscript> meta refresh does the same.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || !box.dataset.pollUrl) { return; }
  var url = box.dataset.pollUrl;
  var initialState = box.dataset.state;
  var bar = box.querySelector("progress");
  function set(field, value) {
    var el = box.querySelector('[data-field="' + field + '"]');
    if (el && value !== null && value !== undefined) { el.textContent = value; }
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) {
        set("deleted", data.deleted); set("total", data.total); set("to_erase", data.to_erase); set("job_status", data.job_status ? String(data.job_status).toLowerCase() : null);
        if (bar && data.percent !== null && data.percent !== undefined) { bar.value = data.percent; }
        (data.stores || []).forEach(function (entry) {
          var row = box.querySelector('[data-store-progress="' + String(entry.store).replace(/["\\]/g, "") + '"]');
          if (!row) { return; }
          var deleted = row.querySelector('[data-field="deleted"]');
          var status = row.querySelector('[data-field="status"]');
          var storeBar = row.querySelector("progress");
          if (deleted) { deleted.textContent = entry.deleted; }
          if (status && entry.status) { status.textContent = String(entry.status).toLowerCase(); }
          if (storeBar && entry.percent !== null && entry.percent !== undefined) { storeBar.value = entry.percent; }
        });
        if (data.state !== initialState || !data.running) { window.location.reload(); return; }
        window.setTimeout(poll, 1500);
      })
      .catch(function () { window.setTimeout(poll, 5000); });
  }
  window.setTimeout(poll, 1000);
})();
