// Small form behaviours every page may use, without inline handlers (the CSP forbids them):
// data-submit-on-change submits its form on change; data-confirm asks before a submit.
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-submit-on-change]")) event.target.form.submit();
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});
