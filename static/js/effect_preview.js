// "Preview effect": what the change in the form (a label's boost, an override, a guardrail)
// would do to customers' next best messages and prompts, computed on a sample before saving.
(function () {
  const button = document.getElementById("preview-effect");
  const progress = document.getElementById("preview-effect-progress");
  const result = document.getElementById("preview-effect-result");
  if (!button || !progress || !result) return;
  const form = button.closest("form");

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  function percent(share) {
    return (100 * share).toFixed(1) + "%";
  }

  function interval(pair) {
    return `95% interval ${percent(pair[0])}–${percent(pair[1])}`;
  }

  function shifts(data) {
    const table = element("table", undefined, "compact");
    table.id = "preview-effect-shifts";
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
    return table;
  }

  function example(data) {
    const names = (rows) => rows.map((row) => row.message).join(", ") || "nothing";
    const block = element("div");
    block.id = "preview-effect-example";
    block.append(
      element(
        "p",
        `For example ${data.example.customer}: ${names(data.example.before)} → ` +
          `${names(data.example.after)}.`,
      ),
    );
    (data.example.excluded || []).forEach((item) =>
      block.append(element("p", `${item.message} excluded: ${item.reason} (${item.rule}).`, "small")),
    );
    if (data.example.nothing_now) block.append(element("p", data.example.nothing_now, "small"));
    return block;
  }

  function prompts(data) {
    const block = element("div");
    block.id = "preview-effect-prompts";
    const p = data.prompts;
    if (!p.rendered) {
      block.append(element("p", p.note, "muted small"));
      return block;
    }
    block.append(
      element(
        "p",
        `${p.changed.toLocaleString()} of ${p.rendered.toLocaleString()} prompts rendered ` +
          `(${percent(p.share)}, ${interval(p.interval)}) would change.`,
      ),
    );
    if (p.example) {
      block.append(element("p", `${p.example.customer}'s prompt, before → after:`, "small"));
      const pre = element("pre", undefined, "diff prompt-diff");
      p.example.diff.forEach((line) => {
        const kind = line[0] === "+" ? "added" : line[0] === "-" ? "removed" : "";
        pre.append(element("span", line + "\n", kind));
      });
      block.append(pre);
    }
    block.append(element("p", p.note, "muted small"));
    return block;
  }

  function show(data) {
    result.replaceChildren();
    result.append(
      element(
        "p",
        `${data.changed.toLocaleString()} of ${data.sample.toLocaleString()} sampled customers ` +
          `(${percent(data.share)}, ${interval(data.interval)}) would get a different top ` +
          `next best message.`,
        "preview-headline",
      ),
    );
    const counts = [];
    if (data.excluded.customers)
      counts.push(
        `${data.excluded.messages.toLocaleString()} messages newly excluded for ` +
          `${data.excluded.customers.toLocaleString()} of them`,
      );
    if (data.released.customers)
      counts.push(
        `${data.released.messages.toLocaleString()} newly allowed for ` +
          `${data.released.customers.toLocaleString()}`,
      );
    if (data.nothing_now.after !== data.nothing_now.before)
      counts.push(
        `nothing may be sent now to ${data.nothing_now.after.toLocaleString()} ` +
          `(was ${data.nothing_now.before.toLocaleString()})`,
      );
    if (counts.length) result.append(element("p", counts.join("; ") + "."));
    result.append(shifts(data));
    if (data.example) result.append(example(data));
    result.append(prompts(data));
    result.append(element("p", `${data.note} (${data.seconds.toFixed(1)} s)`, "muted small"));
  }

  button.addEventListener("click", async () => {
    button.disabled = true;
    progress.hidden = false;
    result.replaceChildren();
    try {
      const response = await fetch(button.dataset.url, { method: "POST", body: new FormData(form) });
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
