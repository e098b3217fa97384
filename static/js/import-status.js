// Follow a running import: poll its status, move the bar, and reload the page when it ends.
(function () {
  var box = document.getElementById("import-progress");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var text = box.querySelector(".status-text");
  var number = new Intl.NumberFormat();
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (job) {
        bar.max = Math.max(job.lines_total || 0, 1);
        bar.value = job.lines_done;
        text.textContent = job.status + ": " + number.format(job.lines_done) +
          (job.lines_total ? " of " + number.format(job.lines_total) : "") + " lines · " +
          number.format(job.stored) + " events stored · " + number.format(job.rejected) + " bad lines";
        if (job.status === "succeeded" || job.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
