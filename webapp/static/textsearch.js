// Text search page: live term chips while typing (GET /api/v1/parse?text=...). Text is set with textContent only.
(function () {
  "use strict";
  var input = document.getElementById("q");
  var box = document.getElementById("chips");
  var status = document.getElementById("chips-status");
  if (!input || !box) { return; }
  var timer = null;
  var latest = 0;

  function chip(c) {
    var el = document.createElement("span");
    el.className = "chip " + c.kind;
    el.textContent = c.kind === "ignored" ? c.words : c.words + " \u2192 " + c.label;
    el.title = c.source + (c.term ? ": " + c.term : "");
    return el;
  }

  function show(chips, message) {
    while (box.firstChild) { box.removeChild(box.firstChild); }
    chips.forEach(function (c) { box.appendChild(chip(c)); });
    if (status) { status.textContent = message || ""; }
  }

  function parse() {
    var text = input.value;
    if (!text.trim()) { show([], ""); return; }
    var ticket = ++latest;
    fetch("/api/v1/parse?text=" + encodeURIComponent(text), {
      credentials: "same-origin", headers: { "Accept": "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (r) {
      if (ticket !== latest) { return; }  // a newer request is on its way
      if (!r.ok) { show([], r.body.error ? r.body.error.message : "could not parse the text"); return; }
      var terms = r.body.chips.filter(function (c) { return c.kind !== "ignored"; }).length;
      show(r.body.chips, terms ? "" : "no vocabulary term recognised yet: the caption text alone will rank");
    }).catch(function () {
      if (ticket === latest) { show([], "the term parser is unreachable"); }
    });
  }

  input.addEventListener("input", function () {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(parse, 200);
  });
  box.setAttribute("data-live", "1");
}());
