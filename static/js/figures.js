// Draw every Plotly figure whose JSON a page put in a <script type="application/json">.
document.querySelectorAll("[data-figure]").forEach(function (target) {
  var source = document.getElementById(target.dataset.figure);
  if (!source || !window.Plotly) { return; }
  var figure = JSON.parse(source.textContent);
  window.Plotly.newPlot(target, figure.data, figure.layout, { displayModeBar: false, responsive: true });
});
