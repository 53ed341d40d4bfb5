// The lesion viewer (docs/viewer.md): a CT slice drawn from its int16 HU values (webapp/viewer.py) on a canvas,
// with window/level presets and drag, zoom and pan, zoom to the lesion, the ROI outline; on the session page the
// query and the selected result side by side with j/k navigation; on the region page an editable, typeable ROI.
// No inline scripts or styles (the CSP forbids them); every viewer is a <div class="viewer" data-slice="URL">.
(function () {
  "use strict";

  // Window presets as [width, level] in HU (the sources are in docs/viewer.md).
  var PRESETS = { liver: [150, 90], soft: [400, 40], bone: [1800, 400] };
  var MIN_SCALE = 0.25, MAX_SCALE = 32, HANDLE = 8;

  // The grey level (0..255) of a HU value in a window: linear from level - width/2 (black) to level + width/2.
  function grey(hu, width, level) {
    var value = Math.round((hu - (level - width / 2)) / width * 255);
    return value < 0 ? 0 : (value > 255 ? 255 : value);
  }

  function Viewer(root) {
    this.root = root;
    this.canvas = root.querySelector("canvas.viewer-canvas");
    this.ctx = this.canvas.getContext("2d");
    this.readout = root.querySelector(".viewer-readout");
    this.meta = null; this.hu = null; this.picture = null; this.pictureKey = "";
    var preset = PRESETS[root.getAttribute("data-preset") || "soft"];
    this.width = preset[0]; this.level = preset[1];
    this.scale = 1; this.ox = 0; this.oy = 0;
    this.outline = true;
    this.editor = null;  // set by RoiEditor on the region page
    this.drag = null;
    this.bind();
  }

  Viewer.prototype.load = function (url) {
    var self = this;
    self.root.setAttribute("data-state", "loading");
    self.loaded = fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("slice metadata: HTTP " + r.status); } return r.json(); })
      .then(function (meta) {
        return fetch(meta.data, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) { throw new Error("slice data: HTTP " + r.status); }
          return r.arrayBuffer();
        }).then(function (buffer) {
          var view = new DataView(buffer), n = meta.shape[0] * meta.shape[1], hu = new Int16Array(n);
          if (buffer.byteLength !== 2 * n) { throw new Error("slice data has the wrong size"); }
          for (var i = 0; i < n; i++) { hu[i] = view.getInt16(2 * i, true); }
          self.meta = meta; self.hu = hu; self.pictureKey = "";
          self.fit();
          self.root.setAttribute("data-state", "ready");
          self.root.dispatchEvent(new CustomEvent("viewer:ready", { bubbles: true }));
        });
      })
      .catch(function (error) {
        self.root.setAttribute("data-state", "error");
        if (self.readout) { self.readout.textContent = "The image could not be shown (" + error.message + ")."; }
      });
    return self.loaded;
  };

  // ---- geometry: image coordinates (pixel corners, x = column, y = row) ↔ canvas pixels ------------------------
  Viewer.prototype.toCanvas = function (x, y) { return [this.ox + x * this.scale, this.oy + y * this.scale]; };
  Viewer.prototype.toImage = function (cx, cy) { return [(cx - this.ox) / this.scale, (cy - this.oy) / this.scale]; };
  Viewer.prototype.eventPoint = function (event) {
    var r = this.canvas.getBoundingClientRect();
    return [(event.clientX - r.left) * this.canvas.width / r.width, (event.clientY - r.top) * this.canvas.height / r.height];
  };

  Viewer.prototype.show = function (x0, y0, x1, y1) {  // fit the image box [x0, x1) × [y0, y1) into the canvas
    var w = this.canvas.width, h = this.canvas.height;
    this.scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, Math.min(w / (x1 - x0), h / (y1 - y0))));
    this.ox = (w - (x0 + x1) * this.scale) / 2; this.oy = (h - (y0 + y1) * this.scale) / 2;
    this.render();
  };
  Viewer.prototype.fit = function () {
    if (this.meta) { this.show(0, 0, this.meta.shape[1], this.meta.shape[0]); }
  };
  Viewer.prototype.zoomToLesion = function () {
    var roi = this.meta && this.meta.roi;
    if (!roi) { return; }
    var b = roi.box, cx = (b[0] + b[2]) / 2, cy = (b[1] + b[3]) / 2;
    var half = Math.max(16, 0.75 * Math.max(b[2] - b[0], b[3] - b[1]));  // the lesion with a quarter of its size around
    this.show(cx - half, cy - half, cx + half, cy + half);
  };
  Viewer.prototype.zoom = function (factor, cx, cy) {
    if (!this.meta) { return; }
    if (cx === undefined) { cx = this.canvas.width / 2; cy = this.canvas.height / 2; }
    var scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, this.scale * factor));
    this.ox = cx - (cx - this.ox) * scale / this.scale; this.oy = cy - (cy - this.oy) * scale / this.scale;
    this.scale = scale;
    this.render();
  };
  Viewer.prototype.setWindow = function (width, level) {
    this.width = Math.max(1, Math.round(width)); this.level = Math.round(level);
    this.root.querySelectorAll("[data-preset-name]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
    for (var name in PRESETS) {
      if (PRESETS[name][0] === this.width && PRESETS[name][1] === this.level) {
        var button = this.root.querySelector("[data-preset-name=" + name + "]");
        if (button) { button.setAttribute("aria-pressed", "true"); }
      }
    }
    this.render();
  };

  // ---- drawing ---------------------------------------------------------------------------------------------------
  Viewer.prototype.picturize = function () {  // the slice in the current window, one canvas pixel per image pixel
    var key = this.width + "/" + this.level;
    if (this.pictureKey === key) { return this.picture; }
    var rows = this.meta.shape[0], cols = this.meta.shape[1];
    var picture = this.picture || document.createElement("canvas");
    picture.width = cols; picture.height = rows;
    var pctx = picture.getContext("2d"), data = pctx.createImageData(cols, rows), px = data.data;
    for (var i = 0; i < rows * cols; i++) {
      var g = grey(this.hu[i], this.width, this.level);
      px[4 * i] = g; px[4 * i + 1] = g; px[4 * i + 2] = g; px[4 * i + 3] = 255;
    }
    pctx.putImageData(data, 0, 0);
    this.picture = picture; this.pictureKey = key;
    return picture;
  };

  Viewer.prototype.render = function () {
    var ctx = this.ctx, w = this.canvas.width, h = this.canvas.height;
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, w, h);
    if (!this.meta) { return; }
    var rows = this.meta.shape[0], cols = this.meta.shape[1];
    ctx.imageSmoothingEnabled = false;  // every image pixel keeps its grey level (nearest neighbour)
    ctx.drawImage(this.picturize(), this.ox, this.oy, cols * this.scale, rows * this.scale);
    if (this.outline && this.meta.roi) { this.drawOutline(this.meta.roi.edges); }
    if (this.editor) { this.editor.draw(ctx); }
    this.canvas.setAttribute("data-view", JSON.stringify({ scale: this.scale, ox: this.ox, oy: this.oy,
                                                             width: this.width, level: this.level }));
    if (this.readout) {
      this.readout.textContent = "W " + this.width + " L " + this.level + " · zoom " + this.scale.toFixed(2) + "×";
    }
  };

  Viewer.prototype.drawOutline = function (edges) {
    var ctx = this.ctx, self = this;
    ctx.strokeStyle = "#ffd600"; ctx.lineWidth = Math.max(1, Math.min(3, this.scale / 2));
    ctx.beginPath();
    edges.forEach(function (e) {
      var a = self.toCanvas(e[0], e[1]), b = self.toCanvas(e[2], e[3]);
      ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]);
    });
    ctx.stroke();
  };

  // ---- mouse and keys --------------------------------------------------------------------------------------------
  Viewer.prototype.mode = function (event) {  // what a drag does: middle or shift = pan, right = W/L, left = the tool
    if (event.button === 1 || event.shiftKey) { return "pan"; }
    if (event.button === 2) { return "wl"; }
    var tool = this.root.querySelector("[data-tool][aria-pressed=true]");
    return tool ? tool.getAttribute("data-tool") : "wl";
  };

  Viewer.prototype.bind = function () {
    var self = this, canvas = this.canvas;
    canvas.addEventListener("contextmenu", function (event) { event.preventDefault(); });
    canvas.addEventListener("pointerdown", function (event) {
      if (!self.meta) { return; }
      var p = self.eventPoint(event), mode = self.mode(event);
      if (mode === "draw" && self.editor) { self.editor.down(p); } else {
        self.drag = { mode: mode, start: p, ox: self.ox, oy: self.oy, width: self.width, level: self.level };
      }
      canvas.setPointerCapture(event.pointerId);
      event.preventDefault();
    });
    canvas.addEventListener("pointermove", function (event) {
      var p = self.eventPoint(event);
      if (self.editor && self.editor.dragging) { self.editor.move(p); return; }
      var d = self.drag;
      if (!d) { return; }
      var dx = p[0] - d.start[0], dy = p[1] - d.start[1];
      if (d.mode === "pan") { self.ox = d.ox + dx; self.oy = d.oy + dy; self.render(); } else {
        self.setWindow(d.width + 4 * dx, d.level - 2 * dy);  // right widens the window, up raises the level
      }
    });
    function up() { self.drag = null; if (self.editor) { self.editor.up(); } }
    canvas.addEventListener("pointerup", up);
    canvas.addEventListener("pointercancel", up);
    canvas.addEventListener("dblclick", function () { if (self.editor) { self.editor.close(); } });
    canvas.addEventListener("wheel", function (event) {
      event.preventDefault();
      var p = self.eventPoint(event);
      self.zoom(Math.pow(1.1, -event.deltaY / 100), p[0], p[1]);
    }, { passive: false });
    canvas.addEventListener("keydown", function (event) {
      var keys = { "+": function () { self.zoom(1.25); }, "=": function () { self.zoom(1.25); },
                   "-": function () { self.zoom(0.8); }, "0": function () { self.fit(); },
                   "l": function () { self.zoomToLesion(); }, "o": function () { self.toggleOutline(); },
                   "1": function () { self.setWindow(PRESETS.liver[0], PRESETS.liver[1]); },
                   "2": function () { self.setWindow(PRESETS.soft[0], PRESETS.soft[1]); },
                   "3": function () { self.setWindow(PRESETS.bone[0], PRESETS.bone[1]); } };
      if (keys[event.key] && !event.ctrlKey && !event.metaKey && !event.altKey) {
        keys[event.key](); event.preventDefault(); event.stopPropagation();
      }
    });
    this.root.querySelectorAll("[data-preset-name]").forEach(function (button) {
      button.addEventListener("click", function () {
        var p = PRESETS[button.getAttribute("data-preset-name")];
        self.setWindow(p[0], p[1]);
      });
    });
    var tools = this.root.querySelectorAll("[data-tool]");
    tools.forEach(function (button) {
      button.addEventListener("click", function () {
        tools.forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
      });
    });
    var actions = { "zoom-in": function () { self.zoom(1.25); }, "zoom-out": function () { self.zoom(0.8); },
                    "fit": function () { self.fit(); }, "lesion": function () { self.zoomToLesion(); },
                    "outline": function () { self.toggleOutline(); } };
    this.root.querySelectorAll("[data-action]").forEach(function (button) {
      button.addEventListener("click", function () { actions[button.getAttribute("data-action")](); });
    });
  };

  Viewer.prototype.toggleOutline = function () {
    this.outline = !this.outline;
    var button = this.root.querySelector("[data-action=outline]");
    if (button) { button.setAttribute("aria-pressed", String(this.outline)); }
    this.render();
  };

  // ---- region page: a rectangle or polygon, edited by drag and in number fields ----------------------------------
  function RoiEditor(viewer, form) {
    this.viewer = viewer; viewer.editor = this;
    this.kindField = form.querySelector("#roi-kind"); this.pointsField = form.querySelector("#roi-points");
    this.status = form.querySelector("#roi-status"); this.rectFields = form.querySelector("#roi-rect-fields");
    this.polyList = form.querySelector("#roi-poly-points");
    this.kind = "rectangle"; this.points = []; this.closed = false; this.dragging = null;
    var self = this;
    form.querySelectorAll("input[name=roi_shape]").forEach(function (radio) {
      radio.addEventListener("change", function () { self.kind = radio.value; self.clear(); });
    });
    form.querySelector("#clear-roi").addEventListener("click", function () { self.clear(); });
    this.rectFields.querySelectorAll("input").forEach(function (input) {
      input.addEventListener("input", function () { self.fromRectFields(); });
    });
    form.querySelector("#roi-add-point").addEventListener("click", function () { self.addTypedPoint(); });
    this.sync();
  }

  RoiEditor.prototype.clamp = function (p) {  // image coordinates rounded to whole pixel corners inside the image
    var shape = this.viewer.meta.shape;
    return [Math.min(shape[1], Math.max(0, Math.round(p[0]))), Math.min(shape[0], Math.max(0, Math.round(p[1])))];
  };
  RoiEditor.prototype.handleAt = function (cp) {  // index of the vertex within HANDLE canvas pixels of cp, or -1
    for (var i = 0; i < this.points.length; i++) {
      var q = this.viewer.toCanvas(this.points[i][0], this.points[i][1]);
      if (Math.abs(q[0] - cp[0]) <= HANDLE && Math.abs(q[1] - cp[1]) <= HANDLE) { return i; }
    }
    return -1;
  };
  RoiEditor.prototype.down = function (cp) {
    var p = this.clamp(this.viewer.toImage(cp[0], cp[1])), hit = this.handleAt(cp);
    if (hit >= 0) { this.dragging = { vertex: hit }; return; }
    if (this.kind === "rectangle") {
      this.points = [p, p.slice()]; this.dragging = { vertex: 1 };
    } else {
      if (this.closed) { this.points = []; this.closed = false; }
      this.points.push(p);
    }
    this.sync();
  };
  RoiEditor.prototype.move = function (cp) {
    this.points[this.dragging.vertex] = this.clamp(this.viewer.toImage(cp[0], cp[1]));
    this.sync();
  };
  RoiEditor.prototype.up = function () { this.dragging = null; };
  RoiEditor.prototype.close = function () {
    if (this.kind === "polygon" && this.points.length >= 3) {
      // a double-click adds the same point twice before closing: keep one
      var n = this.points.length, a = this.points[n - 1], b = this.points[n - 2];
      if (a[0] === b[0] && a[1] === b[1]) { this.points.pop(); }
      this.closed = this.points.length >= 3;
      this.sync();
    }
  };
  RoiEditor.prototype.clear = function () { this.points = []; this.closed = false; this.sync(); };

  RoiEditor.prototype.fromRectFields = function () {
    var values = Array.prototype.map.call(this.rectFields.querySelectorAll("input"), function (i) { return i.value; });
    if (values.some(function (v) { return v === "" || isNaN(Number(v)); })) { return; }
    var v = values.map(Number);
    this.kind = "rectangle";
    this.points = [this.clamp([v[0], v[1]]), this.clamp([v[2], v[3]])];
    this.sync(this.rectFields);
  };
  RoiEditor.prototype.addTypedPoint = function () {
    if (this.kind !== "polygon") { return; }
    var shape = this.viewer.meta.shape, last = this.points[this.points.length - 1];
    this.points.push(last ? this.clamp([last[0] + 4, last[1]]) : [Math.round(shape[1] / 2), Math.round(shape[0] / 2)]);
    this.closed = this.points.length >= 3;
    this.sync();
  };

  RoiEditor.prototype.box = function () {  // [x0, y0, x1, y1] of a rectangle, corners in order
    var a = this.points[0], b = this.points[1];
    return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
  };

  // Bring the hidden form fields, the number fields (except the one being typed in) and the drawing in line.
  RoiEditor.prototype.sync = function (typing) {
    var rect = this.kind === "rectangle" && this.points.length === 2;
    var poly = this.kind === "polygon" && this.points.length >= 3;
    this.kindField.value = rect || poly ? this.kind : "";
    if (rect) {
      var b = this.box();
      this.pointsField.value = JSON.stringify(b);
      this.status.textContent = "Rectangle x " + b[0] + "–" + b[2] + ", y " + b[1] + "–" + b[3] + " (image pixels).";
    } else if (poly) {
      this.pointsField.value = JSON.stringify(this.points);
      this.status.textContent = "Polygon of " + this.points.length + " points" +
        (this.closed ? "." : " (double-click to close).");
    } else {
      this.pointsField.value = "";
      this.status.textContent = "No region drawn yet.";
    }
    this.rectFields.hidden = this.kind !== "rectangle";
    this.polyList.parentNode.hidden = this.kind !== "polygon";
    if (typing !== this.rectFields) {
      var values = rect ? this.box() : ["", "", "", ""];
      this.rectFields.querySelectorAll("input").forEach(function (input, i) { input.value = values[i]; });
    }
    if (typing !== this.polyList) { this.polyFields(); }
    this.viewer.render();
  };

  RoiEditor.prototype.polyFields = function () {
    var self = this, list = this.polyList;
    list.textContent = "";
    this.points.forEach(function (p, i) {
      var item = document.createElement("li");
      ["x", "y"].forEach(function (axis, k) {
        var label = document.createElement("label"), input = document.createElement("input");
        label.className = "inline-label";
        label.textContent = axis + " ";
        input.type = "number"; input.step = "1"; input.min = "0"; input.value = p[k];
        input.setAttribute("aria-label", "point " + (i + 1) + " " + axis);
        input.addEventListener("input", function () {
          if (input.value === "" || isNaN(Number(input.value))) { return; }
          var q = self.points[i].slice();
          q[k] = Number(input.value);
          self.points[i] = self.clamp(q);
          self.sync(list);
        });
        label.appendChild(input); item.appendChild(label);
      });
      var remove = document.createElement("button");
      remove.type = "button"; remove.className = "small"; remove.textContent = "Remove";
      remove.setAttribute("aria-label", "remove point " + (i + 1));
      remove.addEventListener("click", function () { self.points.splice(i, 1); self.sync(); });
      item.appendChild(remove);
      list.appendChild(item);
    });
  };

  RoiEditor.prototype.draw = function (ctx) {
    if (this.points.length === 0) { return; }
    var v = this.viewer, pts = this.points.map(function (p) { return v.toCanvas(p[0], p[1]); });
    ctx.strokeStyle = "#00e5ff"; ctx.lineWidth = 2; ctx.fillStyle = "rgba(0, 229, 255, 0.15)";
    ctx.beginPath();
    if (this.kind === "rectangle" && pts.length === 2) {
      ctx.rect(pts[0][0], pts[0][1], pts[1][0] - pts[0][0], pts[1][1] - pts[0][1]);
    } else {
      ctx.moveTo(pts[0][0], pts[0][1]);
      pts.slice(1).forEach(function (p) { ctx.lineTo(p[0], p[1]); });
      if (this.closed) { ctx.closePath(); }
    }
    ctx.fill(); ctx.stroke();
    ctx.fillStyle = "#00e5ff";
    pts.forEach(function (p) { ctx.fillRect(p[0] - 3, p[1] - 3, 6, 6); });
  };

  // ---- session page: the selected result beside the query, j/k or arrows to move through the results -------------
  var step = null;  // moves the selection of the session page's current body by +1 / -1

  document.addEventListener("keydown", function (event) {
    var tag = event.target && event.target.tagName;
    if (!step || event.ctrlKey || event.metaKey || event.altKey || /^(INPUT|SELECT|TEXTAREA)$/.test(tag)) { return; }
    if (event.key === "j" || event.key === "ArrowRight") { step(1); event.preventDefault(); }
    if (event.key === "k" || event.key === "ArrowLeft") { step(-1); event.preventDefault(); }
  });

  function bindCompare(viewers) {
    step = null;
    var pane = document.getElementById("compare-result");
    if (!pane) { return; }
    var viewer = viewers.filter(function (v) { return v.root === pane.querySelector(".viewer"); })[0];
    var template = pane.getAttribute("data-case-slice"), marker = "0case0";
    var title = document.getElementById("compare-title");
    var cards = Array.prototype.slice.call(document.querySelectorAll("article.hit"));
    var current = -1;
    function select(index) {
      if (!cards.length) { return; }
      current = (index + cards.length) % cards.length;
      var card = cards[current], id = card.getAttribute("data-case");
      cards.forEach(function (c) { c.classList.remove("selected"); c.removeAttribute("aria-current"); });
      card.classList.add("selected"); card.setAttribute("aria-current", "true");
      card.scrollIntoView({ block: "nearest" });
      title.textContent = card.querySelector(".rank").textContent + " " + id;
      pane.setAttribute("data-case", id);
      viewer.load(template.replace(marker, encodeURIComponent(id)));
    }
    cards.forEach(function (card, i) {
      var button = document.createElement("button");
      button.type = "button"; button.className = "small view-result"; button.textContent = "View";
      button.setAttribute("aria-label", "show " + card.getAttribute("data-case") + " beside the query");
      button.addEventListener("click", function () { select(i); });
      card.querySelector(".hit-head").appendChild(button);
    });
    step = function (by) { select(current + by); };
    select(0);
  }

  // Bind every viewer of the page (called again by radiology.js after a round replaced the session body).
  function bindAll() {
    var viewers = Array.prototype.map.call(document.querySelectorAll(".viewer"), function (root) {
      return new Viewer(root);
    });
    viewers.forEach(function (v) {
      var url = v.root.getAttribute("data-slice");
      if (url) { v.load(url); }
    });
    var form = document.getElementById("region-form");
    if (form && viewers.length) {
      viewers[0].loaded.then(function () { if (viewers[0].meta) { new RoiEditor(viewers[0], form); } });
    }
    bindCompare(viewers);
  }

  window.semgraphViewer = { bindAll: bindAll, grey: grey, PRESETS: PRESETS };
  bindAll();
}());
