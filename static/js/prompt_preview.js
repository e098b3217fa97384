// Asking the LLM takes a while: say so, and keep the button from being pressed twice.
(function () {
  "use strict";
  const status = document.getElementById("preview-status");
  document.querySelectorAll("#preview-form, #draft-form").forEach(function (form) {
    form.addEventListener("submit", function () {
      const button = form.querySelector("button[type=submit]");
      if (button) button.disabled = true;
      if (status) status.hidden = false;
    });
  });
  const context = document.getElementById("prompt-context");
  const view = document.getElementById("context-view");
  if (context && view) view.textContent = JSON.stringify(JSON.parse(context.textContent), null, 2);
})();
