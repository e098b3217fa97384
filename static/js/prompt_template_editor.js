// The template editor's live render: POST the unsaved text for the chosen customer, show the result.
(function () {
  "use strict";
  const textarea = document.querySelector("#template-form textarea[name=text]");
  const customer = document.getElementById("render-customer");
  const output = document.getElementById("render-output");
  const meta = document.getElementById("render-meta");
  const form = document.getElementById("render-form");
  if (!textarea || !customer || !output || !form) return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let latest = 0;

  async function render() {
    if (!customer.value.trim()) return;
    const ticket = ++latest;
    const body = new URLSearchParams({ text: textarea.value, customer: customer.value.trim() });
    output.classList.add("stale");
    try {
      const response = await fetch(form.dataset.url, {
        method: "POST",
        headers: { "X-CSRFToken": csrf },
        body: body,
        credentials: "same-origin",
      });
      const data = await response.json();
      if (ticket !== latest) return; // a newer render is on its way
      output.classList.remove("stale");
      output.classList.toggle("error", Boolean(data.error));
      output.textContent = data.error || data.prompt;
      meta.textContent = data.error ? "" :
        "memory as of " + (data.memory_at || "never") + " · sha256 " + data.content_hash.slice(0, 16) + "…";
    } catch (err) {
      if (ticket !== latest) return;
      output.classList.add("error");
      output.textContent = "Could not render: " + err;
    }
  }

  function soon() {
    clearTimeout(timer);
    timer = setTimeout(render, 300);
  }
  textarea.addEventListener("input", soon);
  customer.addEventListener("change", render);
  form.addEventListener("submit", function (event) { event.preventDefault(); render(); });
  render();
})();
