// Radiologists' pages: feedback rounds in place, mark counters, drawing a region on an uploaded image, job progress.
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

  // ---- region page: rectangle / polygon on a canvas over the image ------------------------------------------
  function bindRegion() {
    var canvas = document.getElementById("roi-canvas");
    var image = document.getElementById("roi-image");
    var data = document.getElementById("canvas-data");
    if (!canvas || !image || !data) { return; }
    var shape = JSON.parse(data.textContent);
    var ctx = canvas.getContext("2d");
    var kind = document.getElementById("roi-kind");
    var pointsField = document.getElementById("roi-points");
    var status = document.getElementById("roi-status");
    var points = [], dragging = null, closed = false;

    function tool() { return document.querySelector("input[name=tool]:checked").value; }
    function fit() {
      var w = image.clientWidth || 512, h = image.clientHeight || 512;
      canvas.width = w; canvas.height = h; canvas.style.width = w + "px"; canvas.style.height = h + "px";
      draw();
    }
    function toImage(p) {  // canvas pixels → image pixels (x = column, y = row)
      return [Math.round(p[0] * shape.cols / canvas.width * 10) / 10, Math.round(p[1] * shape.rows / canvas.height * 10) / 10];
    }
    function pos(event) {
      var r = canvas.getBoundingClientRect();
      return [event.clientX - r.left, event.clientY - r.top];
    }
    function draw() {
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#ffd600"; ctx.lineWidth = 2; ctx.fillStyle = "rgba(255, 214, 0, 0.15)";
      if (points.length === 0) { return; }
      ctx.beginPath();
      if (kind.value === "rectangle" && points.length === 2) {
        ctx.rect(points[0][0], points[0][1], points[1][0] - points[0][0], points[1][1] - points[0][1]);
      } else {
        ctx.moveTo(points[0][0], points[0][1]);
        points.slice(1).forEach(function (p) { ctx.lineTo(p[0], p[1]); });
        if (closed) { ctx.closePath(); }
      }
      ctx.fill(); ctx.stroke();
    }
    function store() {
      if (kind.value === "rectangle" && points.length === 2) {
        var a = toImage(points[0]), b = toImage(points[1]);
        pointsField.value = JSON.stringify([a[0], a[1], b[0], b[1]]);
        status.textContent = "Rectangle " + pointsField.value + " (image pixels).";
      } else if (kind.value === "polygon" && points.length >= 3) {
        pointsField.value = JSON.stringify(points.map(toImage));
        status.textContent = "Polygon of " + points.length + " points" + (closed ? "." : " (double-click to close).");
      } else {
        pointsField.value = "";
        status.textContent = "No region drawn yet.";
      }
    }
    function clear() { points = []; closed = false; kind.value = ""; store(); draw(); }

    canvas.addEventListener("mousedown", function (event) {
      if (tool() === "rectangle") { points = [pos(event), pos(event)]; kind.value = "rectangle"; dragging = true; draw(); }
    });
    canvas.addEventListener("mousemove", function (event) {
      if (dragging) { points[1] = pos(event); draw(); }
    });
    window.addEventListener("mouseup", function () {
      if (dragging) { dragging = false; store(); }
    });
    canvas.addEventListener("click", function (event) {
      if (tool() !== "polygon") { return; }
      if (kind.value !== "polygon" || closed) { points = []; closed = false; kind.value = "polygon"; }
      points.push(pos(event)); store(); draw();
    });
    canvas.addEventListener("dblclick", function () {
      if (tool() === "polygon" && points.length >= 3) { closed = true; store(); draw(); }
    });
    document.getElementById("clear-roi").addEventListener("click", clear);
    document.querySelectorAll("input[name=tool]").forEach(function (r) { r.addEventListener("change", clear); });
    if (image.complete) { fit(); } else { image.addEventListener("load", fit); }
    window.addEventListener("resize", fit);
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
  bindRegion();
  bindJobs();
}());
