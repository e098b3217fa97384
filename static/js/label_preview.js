// "Preview effect": what the boost in the form would do to customers' next best messages,
// computed on a sample before anything is saved.
(function () {
  const button = document.getElementById("preview-effect");
  const field = document.getElementById("id_boost");
  const progress = document.getElementById("preview-effect-progress");
  const result = document.getElementById("preview-effect-result");
  if (!button || !field || !progress || !result) return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function percent(share) {
    return (100 * share).toFixed(1) + "%";
  }

  function show(data) {
    result.replaceChildren();
    const [low, high] = data.interval;
    result.append(
      element(
        "p",
        `${data.changed.toLocaleString()} of ${data.sample.toLocaleString()} sampled customers ` +
          `(${percent(data.share)}, 95% interval ${percent(low)}–${percent(high)}) would get a ` +
          `different top next best message.`,
        "preview-headline",
      ),
    );
    const table = element("table", undefined, "compact");
    const head = element("tr");
    ["Label set", "Label", "Top before", "Top after", "Shift"].forEach((name) =>
      head.append(element("th", name)),
    );
    table.append(head);
    Object.entries(data.label_shifts).forEach(([labelSet, labels]) => {
      labels.slice(0, 3).forEach((row) => {
        const line = element("tr");
        [labelSet, row.label, percent(row.before), percent(row.after)].forEach((text) =>
          line.append(element("td", text)),
        );
        line.append(element("td", (row.shift >= 0 ? "+" : "") + percent(row.shift), "num"));
        table.append(line);
      });
    });
    result.append(table);
    if (data.example) {
      const names = (rows) => rows.map((row) => row.message).join(", ");
      result.append(
        element(
          "p",
          `For example ${data.example.customer}: ${names(data.example.before)} → ` +
            `${names(data.example.after)}.`,
        ),
      );
    }
    result.append(element("p", `${data.note} (${data.seconds.toFixed(1)} s)`, "muted small"));
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    progress.hidden = false;
    result.replaceChildren();
    try {
      const response = await fetch(button.dataset.url, {
        method: "POST",
        headers: { "X-CSRFToken": csrf },
        body: new URLSearchParams({ boost: field.value }),
      });
      const data = await response.json();
      if (response.ok) show(data);
      else result.append(element("p", data.error, "error"));
    } catch (error) {
      result.append(element("p", "Could not preview: " + error, "error"));
    } finally {
      progress.hidden = true;
      button.disabled = false;
    }
  });
})();
