// The message form: show the nearest existing messages while the marketer types (a debounced
// fetch), and ask the LLM for labels on request; a proposal is applied only by a click.
(function () {
  "use strict";
  const form = document.getElementById("message-form");
  if (!form) return;
  const subject = form.querySelector("[name=subject]");
  const body = form.querySelector("[name=body]");
  const table = document.querySelector("#similar tbody");
  const warning = document.getElementById("near-duplicate-warning");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let asked = 0;

  function text() {
    return [subject.value.trim(), body.value.trim()].filter(Boolean).join("\n");
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    td.append(content);
    return td;
  }

  function showSimilar(data) {
    table.replaceChildren();
    let near = false;
    data.similar.forEach(function (found) {
      const link = document.createElement("a");
      link.href = form.dataset.similarUrl.replace(/similar\/$/, found.id + "/");
      const code = document.createElement("code");
      code.textContent = found.key;
      link.append(code);
      const subjectLine = document.createElement("div");
      subjectLine.className = "muted small";
      subjectLine.textContent = found.subject;
      const tr = document.createElement("tr");
      if (found.near_duplicate) tr.className = "near-duplicate";
      const first = cell(link);
      first.append(subjectLine);
      tr.append(first, cell(found.similarity.toFixed(2), "num"));
      table.append(tr);
      near = near || found.near_duplicate;
    });
    if (!data.similar.length) {
      const tr = document.createElement("tr");
      tr.append(cell("No similar message.", "muted"));
      table.append(tr);
    }
    warning.hidden = !near;
  }

  function compare() {
    const value = text();
    if (!value) return;
    const ticket = ++asked;
    const params = new URLSearchParams({ text: value, exclude: form.dataset.exclude || "" });
    fetch(form.dataset.similarUrl + "?" + params, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data && ticket === asked) showSimilar(data); })
      .catch(function () {});
  }

  [subject, body].forEach(function (input) {
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(compare, 400);
    });
  });

  const suggest = document.getElementById("suggest-labels");
  const status = document.getElementById("suggest-status");
  const proposals = document.getElementById("suggestions");
  if (!suggest || suggest.disabled) return;
  suggest.addEventListener("click", function () {
    suggest.disabled = true;
    status.textContent = "Asking the LLM…";
    proposals.replaceChildren();
    fetch(form.dataset.suggestUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrf },
      body: new URLSearchParams({ text: text() }),
    })
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (data.detail) { status.textContent = data.detail; return; }
        status.textContent = data.labels.length ? "Proposed (click to apply):" : "No label fits, the LLM says.";
        data.labels.forEach(function (label) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "secondary proposal";
          button.textContent = label.ref;
          button.addEventListener("click", function () {
            const box = form.querySelector('input[name=labels][value="' + CSS.escape(label.ref) + '"]');
            if (box) box.checked = true;
            button.disabled = true;
          });
          proposals.append(button);
        });
      })
      .catch(function () { status.textContent = "The suggestion failed; try again."; })
      .finally(function () { suggest.disabled = false; });
  });
})();
