// Query page: pick an example without reloading; Ctrl+Enter (Cmd+Enter) runs the query.
(function () {
  "use strict";
  var data = document.getElementById("examples-data");
  var editor = document.getElementById("query");
  var form = document.getElementById("query-form");
  if (!data || !editor || !form) { return; }
  var examples = {};
  JSON.parse(data.textContent).forEach(function (e) { examples[e.key] = e; });
  document.querySelectorAll("a[data-example]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var example = examples[link.getAttribute("data-example")];
      if (!example) { return; }
      event.preventDefault();
      editor.value = example.query;
      document.querySelectorAll("a[data-example]").forEach(function (l) { l.classList.remove("active"); });
      link.classList.add("active");
      editor.focus();
    });
  });
  editor.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.querySelector("button[value=query]").click();
    }
  });
}());
