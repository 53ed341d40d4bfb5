// Account page: a Copy button for a newly created API token (the token stays selectable text without it).
// No inline scripts (the CSP forbids them).
(function () {
  "use strict";
  var button = document.getElementById("copy-token");
  if (!button || !navigator.clipboard) { return; }
  var source = document.getElementById(button.getAttribute("data-copy"));
  var state = document.getElementById("copy-state");
  if (!source) { return; }
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      if (state) { state.textContent = "Copied."; }
    }, function () {
      if (state) { state.textContent = "Copying failed: select the token and copy it."; }
    });
  });
})();
