// Kontak page helpers: social account rows, delete confirmation, toasts. No framework.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.id === "add-social") {
      var template = document.getElementById("social-template");
      var rows = document.getElementById("social-rows");
      rows.appendChild(template.content.cloneNode(true));
      var inputs = rows.querySelectorAll("input[name=social_handle]");
      inputs[inputs.length - 1].focus();
    } else if (target.classList && target.classList.contains("remove-social")) {
      var row = target.closest(".social-row");
      var all = document.querySelectorAll("#social-rows .social-row");
      if (all.length > 1) { row.remove(); } else { row.querySelector("input").value = ""; }
    }
  });

  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) { event.preventDefault(); }
  });

  window.kontakToast = function (text, kind) {
    var box = document.getElementById("toasts");
    var toast = document.createElement("div");
    toast.className = "toast " + (kind || "ok");
    toast.textContent = text;
    box.appendChild(toast);
    setTimeout(function () { toast.remove(); }, 8000);
    return toast;
  };

  document.querySelectorAll("#toasts .toast").forEach(function (toast) {
    setTimeout(function () { toast.remove(); }, 8000);
  });
})();
