// WaterWatch console: small progressive enhancements; every page works without it.
(function () {
  "use strict";
  // a click anywhere on a queue row opens the lead
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest && ev.target.closest("tr[data-href]");
    if (!row || ev.target.closest("a, button, input, select")) return;
    window.location.href = row.getAttribute("data-href");
  });
  // the violation type only applies to a violation
  function syncVerdictForm(form) {
    var checked = form.querySelector('input[name="outcome"]:checked');
    var box = form.querySelector(".violation-type");
    if (!box) return;
    var isViolation = checked && checked.value === "violation";
    box.classList.toggle("hidden", !isViolation);
    var select = box.querySelector("select");
    select.required = !!isViolation;
    if (!isViolation) select.value = "";
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.verdict-form").forEach(function (form) {
      syncVerdictForm(form);
      form.addEventListener("change", function () { syncVerdictForm(form); });
      form.addEventListener("submit", function () {
        var btn = form.querySelector('button[type="submit"]');
        if (btn) { setTimeout(function () { btn.disabled = true; }, 0); }
      });
    });
  });
})();
// the day sheet's print button (no inline script: the content security policy allows only this file)
document.addEventListener("click", function (ev) {
  var btn = ev.target.closest && ev.target.closest('[data-action="print"]');
  if (btn) { window.print(); }
});
