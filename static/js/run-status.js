// Follow a running recompute: poll its status and show progress until it ends.
(function () {
  var box = document.getElementById("run-status");
  if (!box) { return; }
  var bar = box.querySelector("progress");
  var text = box.querySelector(".status-text");
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (run) {
        bar.max = Math.max(run.shards_total, 1);
        bar.value = run.shards_done;
        text.textContent = run.status + ": " + run.shards_done + " of " + run.shards_total + " shards";
        if (run.status === "succeeded" || run.status === "failed") {
          window.location.reload();
        } else {
          window.setTimeout(poll, 1000);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
