// quantpipe dashboard: draw every chart whose ECharts option the server put in the page.
// Options are plain JSON (<script type="application/json" data-chart-for="ID">); the SVG
// renderer keeps charts crisp in screenshots and inspectable in tests.
(function () {
  "use strict";
  var charts = {};

  function draw(root) {
    if (!window.echarts) { return; }
    (root || document).querySelectorAll("script[data-chart-for]").forEach(function (node) {
      var id = node.getAttribute("data-chart-for");
      var el = document.getElementById(id);
      if (!el) { return; }
      var option;
      try { option = JSON.parse(node.textContent); } catch (e) { console.warn("chart " + id + ": bad option"); return; }
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      option.animation = false;
      chart.setOption(option, true);
      charts[id] = chart;
    });
  }

  function forget(root) {
    Object.keys(charts).forEach(function (id) {
      var el = document.getElementById(id);
      if (!el || (root && root.contains(el))) { charts[id].dispose(); delete charts[id]; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.requestSubmit(); });
    });
  });
  document.addEventListener("htmx:beforeSwap", function (evt) { forget(evt.detail.target); });
  document.addEventListener("htmx:afterSettle", function (evt) { draw(evt.detail.target); });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (id) { charts[id].resize(); });
  });
  // Confirmation dialogs of admin actions: Escape closes, focus goes to the first field.
  document.addEventListener("htmx:afterSettle", function (evt) {
    var box = evt.detail.target.querySelector && evt.detail.target.querySelector(".confirm input, .confirm button");
    if (box) { box.focus(); }
  });
  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") {
      document.querySelectorAll(".confirm").forEach(function (c) { c.remove(); });
    }
  });
  window.qpCharts = charts;
})();
