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

  // Past 200 tags a page suggests the first 200 by name; as the user types, it asks the
  // API for the tags that start with the text (after the last comma where a field holds
  // several) and offers those instead.
  document.querySelectorAll("input[data-suggest]").forEach(function (input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    var asked = null;
    function parts() {
      var value = input.value;
      var cut = input.hasAttribute("data-many") ? value.lastIndexOf(",") + 1 : 0;
      return { before: value.slice(0, cut), term: value.slice(cut).trim().toLowerCase() };
    }
    function suggest() {
      var typed = parts();
      if (!typed.term || typed.term === asked) { return; }
      asked = typed.term;
      fetch("/api/v1/tags?limit=20&q=" + encodeURIComponent(typed.term), {
        credentials: "same-origin", headers: { Accept: "application/json" }
      }).then(function (response) {
        return response.ok ? response.json() : [];
      }).then(function (tags) {
        if (parts().term !== typed.term) { return; }  // typed on meanwhile
        var lead = typed.before ? typed.before.replace(/\s+$/, "") + " " : "";
        list.replaceChildren.apply(list, tags.map(function (tag) {
          var option = document.createElement("option");
          option.value = lead + tag.name;
          return option;
        }));
      }).catch(function () { asked = null; });
    }
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(suggest, 150);
    });
  });

  document.querySelectorAll("#toasts .toast").forEach(function (toast) {
    setTimeout(function () { toast.remove(); }, 8000);
  });
})();
