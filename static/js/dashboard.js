/* HQ dashboard charts: each <div class="chart" data-chart="ID"> names a <script type="application/json" id="ID">
 * spec written by the server (json_script). Spec: {kind: line|bar|pie|heatmap|spark, x: [...], y: [...]
 * (heatmap rows), series: [{name, data, type?, stack?}], unit: ""|"money"|"ratio"}. All labels arrive
 * translated from the server, so this file holds no user-facing text. Plain JS, no third-party requests.
 * A spec may carry partial: i (the trend point i is not over yet: this month so far, or today) and
 * partial_label: that point is drawn hollow, reached by a dashed segment and labelled. */
(function () {
  "use strict";
  if (typeof window.echarts === "undefined") { return; }

  var COLOURS = ["#b4232a", "#2f6fb1", "#3a9a5b", "#d98e04", "#7b4fa0", "#0f8b8d", "#8a8f98", "#c2185b"];

  function num(value) {
    if (value === null || value === undefined || value === "") { return null; }
    var n = Number(value);
    return isNaN(n) ? null : n;
  }

  function formatter(unit) {
    var lang = document.documentElement.lang || "zh-hans";
    return function (value) {
      if (value === null || value === undefined) { return "–"; }
      if (unit === "ratio") { return (value * 100).toFixed(1) + "%"; }
      if (unit === "money") { return "¥" + Number(value).toLocaleString(lang, {maximumFractionDigits: 2}); }
      return Number(value).toLocaleString(lang, {maximumFractionDigits: 2});
    };
  }

  // The first series' point spec.partial as a hollow, labelled point at the end of a dashed segment.
  function markPartial(spec, series, small) {
    var i = spec.partial;
    if (i === undefined || i === null || !series.length) { return series; }
    var main = series[0];
    var values = main.data;
    main.data = values.map(function (v, k) { return k === i ? null : v; });
    var tail = values.map(function (v, k) {
      if (k === i) {
        return {value: v, symbol: "emptyCircle", symbolSize: small ? 6 : 9,
                label: {show: true, formatter: spec.partial_label || "", position: small ? (i > 0 ? "left" : "right") : "top",
                        fontSize: small ? 10 : 12, color: "#8a5a00"}};
      }
      return k === i - 1 ? v : null;
    });
    series.push({name: main.name, type: "line", data: tail, symbol: "none", showSymbol: true, connectNulls: false,
                 z: 3, itemStyle: {color: COLOURS[0]},
                 lineStyle: {type: "dashed", width: small ? 2 : 2, color: COLOURS[0]}});
    return series;
  }

  function axisOption(spec, fmt) {
    return {
      color: COLOURS,
      tooltip: {trigger: "axis", valueFormatter: fmt},
      legend: {top: 0, type: "scroll"},
      grid: {left: 8, right: 16, top: 32, bottom: 8, containLabel: true},
      xAxis: {type: "category", data: spec.x, boundaryGap: spec.kind === "bar"},
      yAxis: {type: "value", axisLabel: {formatter: fmt}, minInterval: spec.integer ? 1 : undefined},
      series: markPartial(spec, spec.series.map(function (s) {
        return {name: s.name, type: s.type || (spec.kind === "bar" ? "bar" : "line"), stack: s.stack,
                smooth: false, showSymbol: spec.x.length < 40, connectNulls: true, lineStyle: s.dashed ? {type: "dashed"} : undefined,
                data: s.data.map(num)};
      }), false)
    };
  }

  function sparkOption(spec, fmt) {
    return {
      color: COLOURS,
      animation: false,
      tooltip: {trigger: "axis", valueFormatter: fmt, confine: true},
      grid: {left: 2, right: 2, top: 4, bottom: 2},
      xAxis: {type: "category", data: spec.x, show: false, boundaryGap: false},
      yAxis: {type: "value", show: false, scale: true},
      series: markPartial(spec, spec.series.map(function (s) {
        return {name: s.name, type: "line", showSymbol: false, connectNulls: true, data: s.data.map(num),
                lineStyle: {width: s.dashed ? 1 : 2, type: s.dashed ? "dashed" : "solid"}};
      }), true)
    };
  }

  function pieOption(spec, fmt) {
    return {
      color: COLOURS,
      tooltip: {trigger: "item", valueFormatter: fmt},
      legend: {top: 0, type: "scroll"},
      series: [{type: "pie", radius: ["35%", "65%"], top: 24,
                data: spec.x.map(function (label, i) { return {name: label, value: num(spec.series[0].data[i])}; })}]
    };
  }

  function heatmapOption(spec, fmt) {
    var cells = [], max = 0;
    spec.series[0].data.forEach(function (row, yi) {
      row.forEach(function (value, xi) {
        var v = num(value) || 0;
        max = Math.max(max, v);
        cells.push([xi, yi, v]);
      });
    });
    return {
      tooltip: {position: "top", valueFormatter: fmt},
      grid: {left: 8, right: 16, top: 8, bottom: 56, containLabel: true},
      xAxis: {type: "category", data: spec.x, splitArea: {show: true}, axisLabel: {rotate: 30}},
      yAxis: {type: "category", data: spec.y, splitArea: {show: true}},
      visualMap: {min: 0, max: max || 1, calculable: true, orient: "horizontal", left: "center", bottom: 0,
                  inRange: {color: ["#fdf2f2", "#b4232a"]}},
      series: [{name: spec.series[0].name, type: "heatmap", data: cells, label: {show: true}}]
    };
  }

  var BUILDERS = {line: axisOption, bar: axisOption, pie: pieOption, heatmap: heatmapOption, spark: sparkOption};
  var charts = [];

  function draw(el, done) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) { done(); return; }
    var spec = JSON.parse(source.textContent);
    var build = BUILDERS[spec.kind] || axisOption;
    var chart = window.echarts.init(el, null, {renderer: "canvas"});
    var finished = false;
    chart.on("finished", function () { if (!finished) { finished = true; done(); } });
    chart.setOption(build(spec, formatter(spec.unit)));
    charts.push(chart);
  }

  function init() {
    var containers = document.querySelectorAll(".chart[data-chart]");
    var remaining = containers.length;
    // <html data-charts-ready="N"> once every chart has finished drawing (its entry animation included).
    function done() {
      remaining -= 1;
      if (remaining <= 0) { document.documentElement.setAttribute("data-charts-ready", String(charts.length)); }
    }
    if (!remaining) { document.documentElement.setAttribute("data-charts-ready", "0"); }
    Array.prototype.forEach.call(containers, function (el) { draw(el, done); });
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 120);
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
