// Count the customers the audience selects while the marketer edits it ("matches 4,210 customers").
(function () {
  const field = document.getElementById("id_audience");
  const out = document.getElementById("audience-count");
  if (!field || !out) return;
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]").value;
  let timer = null;
  let asked = 0;

  async function count() {
    const mine = ++asked;
    const body = new URLSearchParams({ audience: field.value });
    try {
      const response = await fetch(out.dataset.url, {
        method: "POST",
        headers: { "X-CSRFToken": csrf },
        body,
      });
      const data = await response.json();
      if (mine !== asked) return; // a newer edit is being counted
      out.classList.toggle("error", !response.ok);
      out.textContent = response.ok ? data.text : data.error;
    } catch (error) {
      out.classList.add("error");
      out.textContent = "Could not count: " + error;
    }
  }

  field.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(count, 300);
  });
  count();
})();
