// Radiologists' pages: feedback rounds in place, mark counters, job progress (the image viewer is viewer.js).
// No inline scripts (the CSP forbids them): data comes from <script type="application/json"> blocks.
(function () {
  "use strict";

  // ---- session page: marks and in-place rounds --------------------------------------------------------------
  function countMarks() {
    var out = document.getElementById("mark-count");
    if (!out) { return; }
    var rel = document.querySelectorAll(".marks input[value=relevant]:checked").length;
    var irr = document.querySelectorAll(".marks input[value=irrelevant]:checked").length;
    out.textContent = rel + " relevant, " + irr + " irrelevant";
    document.querySelectorAll(".hit").forEach(function (card) {
      var checked = card.querySelector(".marks input:checked");
      card.classList.toggle("marked-relevant", !!checked && checked.value === "relevant");
      card.classList.toggle("marked-irrelevant", !!checked && checked.value === "irrelevant");
    });
  }

  function swapBody(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("session-body");
    var current = document.getElementById("session-body");
    if (fresh && current) {
      current.replaceWith(fresh);
      bindSession();
      if (window.semgraphViewer) { window.semgraphViewer.bindAll(); }
      window.scrollTo({ top: 0 });
      return true;
    }
    return false;
  }

  function submitInPlace(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var buttons = form.querySelectorAll("button");
      buttons.forEach(function (b) { b.disabled = true; });
      fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin",
                           headers: { "Accept": "text/html" } })
        .then(function (response) {
          return response.text().then(function (text) {
            if (response.redirected && history.replaceState) { history.replaceState(null, "", response.url); }
            if (!response.ok || !swapBody(text)) { document.open(); document.write(text); document.close(); }
          });
        })
        .catch(function () { buttons.forEach(function (b) { b.disabled = false; }); form.submit(); });
    });
  }

  function bindSession() {
    if (!document.getElementById("session-body")) { return; }
    document.querySelectorAll("form.in-place").forEach(submitInPlace);
    document.querySelectorAll(".marks input").forEach(function (input) { input.addEventListener("change", countMarks); });
    var group = document.getElementById("group-select");
    if (group) { group.addEventListener("change", function () { group.form.submit(); }); }
    countMarks();
  }

  // ---- jobs page: poll running jobs ----------------------------------------------------------------------------
  function bindJobs() {
    var rows = Array.prototype.slice.call(document.querySelectorAll("tr.job"));
    var active = rows.filter(function (r) { return /queued|running/.test(r.getAttribute("data-state")); });
    if (active.length === 0) { return; }
    function poll() {
      var pending = 0;
      Promise.all(active.map(function (row) {
        return fetch("/api/v1/jobs/" + encodeURIComponent(row.getAttribute("data-job")), { credentials: "same-origin" })
          .then(function (r) { return r.json(); })
          .then(function (job) {
            row.setAttribute("data-state", job.state);
            row.querySelector(".state").textContent = job.state;
            row.querySelector(".message").textContent = job.error || job.message;
            var bar = row.querySelector("progress");
            if (job.percent !== null) { bar.value = job.percent; bar.textContent = job.percent + "%"; }
            if (job.state === "queued" || job.state === "running") { pending += 1; }
          });
      })).then(function () { if (pending) { setTimeout(poll, 1000); } });
    }
    setTimeout(poll, 500);
  }

  bindSession();
  bindJobs();
}());
