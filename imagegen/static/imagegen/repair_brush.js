// The repair action's brush: strokes are shown in cyan (rarely a product colour) over each photo and drawn white on black in a
// hidden canvas of the photo's own proportions, which is posted as a PNG (mask_<product id>) on submit.
(function () {
  "use strict";
  // Larger photos are painted at this size: the server scales the mask back to the photo.
  var MAX_SIDE = 1024;

  function setUp(block) {
    var img = block.querySelector("img");
    var strokes = block.querySelector("canvas.imagegen-strokes");
    var field = block.querySelector("input[type=hidden]");
    var mask = document.createElement("canvas");
    var painted = false;
    var last = null;

    function size() {
      var scale = Math.min(1, MAX_SIDE / Math.max(img.naturalWidth, img.naturalHeight));
      var w = Math.max(1, Math.round(img.naturalWidth * scale)), h = Math.max(1, Math.round(img.naturalHeight * scale));
      strokes.width = mask.width = w;
      strokes.height = mask.height = h;
      clear();
    }
    function clear() {
      strokes.getContext("2d").clearRect(0, 0, strokes.width, strokes.height);
      var m = mask.getContext("2d");
      m.fillStyle = "#000";
      m.fillRect(0, 0, mask.width, mask.height);
      painted = false;
      field.value = "";
    }
    function point(event) {
      var box = strokes.getBoundingClientRect();
      return { x: (event.clientX - box.left) * strokes.width / box.width, y: (event.clientY - box.top) * strokes.height / box.height };
    }
    function brush() {
      return Math.max(1, strokes.width * Number(document.getElementById("imagegen-brush-size").value) / 100);
    }
    function line(ctx, colour, from, to) {
      ctx.strokeStyle = ctx.fillStyle = colour;
      ctx.lineWidth = brush();
      ctx.lineCap = ctx.lineJoin = "round";
      ctx.beginPath();
      ctx.moveTo(from.x, from.y);
      ctx.lineTo(to.x, to.y);
      ctx.stroke();
      ctx.beginPath();
      ctx.arc(to.x, to.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
    }
    function paint(to) {
      var from = last || to;
      line(strokes.getContext("2d"), "rgba(0, 200, 255, 0.6)", from, to);
      line(mask.getContext("2d"), "#fff", from, to);
      last = to;
      painted = true;
    }
    strokes.addEventListener("pointerdown", function (event) {
      strokes.setPointerCapture(event.pointerId);
      last = null;
      paint(point(event));
    });
    strokes.addEventListener("pointermove", function (event) {
      if (last) { paint(point(event)); }
    });
    ["pointerup", "pointercancel"].forEach(function (name) {
      strokes.addEventListener(name, function () { last = null; });
    });
    block.querySelector(".imagegen-clear").addEventListener("click", clear);
    block.closest("form").addEventListener("submit", function () {
      field.value = painted ? mask.toDataURL("image/png") : "";
    });
    if (img.complete && img.naturalWidth) { size(); } else { img.addEventListener("load", size); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".imagegen-paint").forEach(setUp);
  });
})();
