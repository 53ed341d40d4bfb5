// SPARQL query page: turns the query textarea into a CodeMirror editor (SPARQL highlighting, line numbers,
// completion of the declared prefixes with Ctrl+Space), marks the line and column of the server's error, and
// fills the editor from the examples. Without JavaScript the textarea and the form work as they are.
(function () {
  "use strict";
  var textarea = document.getElementById("query");
  var form = document.getElementById("query-form");
  if (!textarea || !form) { return; }

  function jsonOf(id, fallback) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : fallback;
  }

  function runQuery() { form.querySelector("button[value=query]").click(); }

  // Prefixes the server declares before every query, and those the text declares itself.
  var predeclared = jsonOf("prefixes-data", {});

  function knownPrefixes(text) {
    var known = {};
    Object.keys(predeclared).forEach(function (name) { known[name] = predeclared[name]; });
    var declaration = /PREFIX\s+([A-Za-z][\w.\-]*)?:\s*<([^>]*)>/gi;
    var match;
    while ((match = declaration.exec(text)) !== null) { known[match[1] || ""] = match[2]; }
    return known;
  }

  function prefixHint(cm) {
    var cursor = cm.getCursor();
    var before = cm.getLine(cursor.line).slice(0, cursor.ch);
    var word = /[A-Za-z][\w.\-]*$/.exec(before);
    var start = word ? cursor.ch - word[0].length : cursor.ch;
    var typed = word ? word[0] : "";
    var known = knownPrefixes(cm.getValue());
    var list = Object.keys(known).filter(function (name) { return name && name.indexOf(typed) === 0; })
      .sort().map(function (name) { return { text: name + ":", displayText: name + ":  <" + known[name] + ">" }; });
    return { list: list, from: CodeMirror.Pos(cursor.line, start), to: cursor };
  }

  var editor = null;
  if (typeof CodeMirror === "function") {
    editor = CodeMirror.fromTextArea(textarea, {
      mode: "application/sparql-query",
      lineNumbers: true,
      gutters: ["error-gutter", "CodeMirror-linenumbers"],
      indentUnit: 2,
      viewportMargin: Infinity,
      extraKeys: { "Ctrl-Enter": runQuery, "Cmd-Enter": runQuery, "Ctrl-Space": "autocomplete" },
      hintOptions: { hint: prefixHint, completeSingle: false }
    });
    editor.on("change", function () { editor.save(); });
  } else {
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        runQuery();
      }
    });
  }

  function setText(text) {
    if (editor) { editor.setValue(text); editor.focus(); } else { textarea.value = text; textarea.focus(); }
  }

  // The examples: fill the editor without reloading the page.
  var examples = {};
  jsonOf("examples-data", []).forEach(function (e) { examples[e.key] = e; });
  document.querySelectorAll("a[data-example]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var example = examples[link.getAttribute("data-example")];
      if (!example) { return; }
      event.preventDefault();
      setText(example.query);
      document.querySelectorAll("a[data-example]").forEach(function (l) { l.classList.remove("active"); });
      link.classList.add("active");
    });
  });

  // The server's error position (data-line, data-column of the error box, 1-based): mark it in the editor.
  var error = document.getElementById("query-error");
  if (editor && error && error.hasAttribute("data-line")) {
    var line = parseInt(error.getAttribute("data-line"), 10) - 1;
    var column = parseInt(error.getAttribute("data-column"), 10) - 1;
    if (line >= 0 && line < editor.lineCount()) {
      var marker = document.createElement("span");
      marker.className = "error-marker";
      marker.textContent = "\u2716";
      marker.title = error.querySelector(".message").textContent;
      editor.setGutterMarker(line, "error-gutter", marker);
      editor.addLineClass(line, "background", "error-line");
      // Mark the word at the position, or the one just before it (the parser names the position after the
      // furthest character it could read, often the end of the line).
      var text = editor.getLine(line);
      var at = Math.min(Math.max(column, 0), text.length);
      if (at >= text.length || /\s/.test(text.charAt(at))) { at = Math.max(0, at - 1); }
      var start = at, end = Math.min(at + 1, text.length);
      while (start > 0 && !/\s/.test(text.charAt(start - 1))) { start -= 1; }
      while (end < text.length && !/\s/.test(text.charAt(end))) { end += 1; }
      if (end > start) {
        editor.markText(CodeMirror.Pos(line, start), CodeMirror.Pos(line, end), { className: "error-mark" });
      }
      editor.setCursor(CodeMirror.Pos(line, start));
      editor.scrollIntoView(null, 40);
    }
  }
}());
