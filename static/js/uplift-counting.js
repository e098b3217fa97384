// Follow a queued count of a campaign's decisions: poll when it was last counted and show the
// page anew once that is later than the request.
(function () {
  var box = document.getElementById("uplift-counting");
  if (!box) { return; }
  var text = box.querySelector(".status-text");
  var waited = 0;
  function poll() {
    fetch(box.dataset.url, { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (answer) {
        if (answer.done) {
          window.location.assign(box.dataset.page);
          return;
        }
        waited += 1;
        if (waited >= 120) {
          text.textContent = "Still not counted after 2 minutes: are the workers running? Reload to look again.";
          return;
        }
        text.textContent = "Counting on the workers… (" + waited + " s)";
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();
