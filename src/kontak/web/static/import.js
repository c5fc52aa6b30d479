// The import flow of the reference: drop or browse a file, Continue, watch the progress,
// then a notification at the top right, or the reasons and "See Duplicated Data" with the
// upload open again on the same page. Talks to the JSON API with the session cookie.
(function () {
  "use strict";
  var root = document.getElementById("importer");
  if (!root) { return; }
  var text = JSON.parse(root.getAttribute("data-i18n"));
  var csrf = root.getAttribute("data-csrf");
  var locale = root.getAttribute("data-locale") || "en";
  var maxBytes = parseInt(root.getAttribute("data-max-bytes"), 10);
  // Groups, rows a group, matches and invalid rows listed; the report has them all (a 1M-row
  // file's ~10,000 of each froze the page for seconds). One more is fetched to know.
  var shown = parseInt(root.getAttribute("data-shown"), 10);
  var zone = document.getElementById("dropzone");
  var input = document.getElementById("file-input");
  var go = document.getElementById("continue");
  var progress = document.getElementById("progress");
  var bar = document.getElementById("progress-bar");
  var status = document.getElementById("progress-text");
  var result = document.getElementById("result");
  var chosen = null;

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, key) { return values[key]; });
  }
  function size(bytes) {
    if (bytes < 1024) { return bytes + " B"; }
    if (bytes < 1048576) { return (bytes / 1024).toFixed(1) + " KB"; }
    return (bytes / 1048576).toFixed(1) + " MB";
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { node.appendChild(typeof c === "string" ? document.createTextNode(c) : c); });
    return node;
  }
  function table(headers, rows) {
    var head = el("tr", {}, headers.map(function (h) { return el("th", { scope: "col" }, [String(h)]); }));
    var body = rows.map(function (r) { return el("tr", {}, r.map(function (c) { return el("td", {}, [c instanceof Node ? c : String(c)]); })); });
    return el("div", { "class": "table-wrap" }, [el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)])]);
  }

  function choose(file) {
    result.innerHTML = "";
    if (!file) { return; }
    if (!/\.(csv|xlsx)$/i.test(file.name)) {
      chosen = null; go.disabled = true;
      result.appendChild(el("p", { "class": "alert error", role: "alert" }, [text.wrong_type]));
      return;
    }
    if (file.size > maxBytes) {
      chosen = null; go.disabled = true;
      result.appendChild(el("p", { "class": "alert error", role: "alert" }, [text.too_large]));
      return;
    }
    chosen = file;
    document.getElementById("chosen-name").textContent = file.name;
    document.getElementById("chosen-size").textContent = "(" + size(file.size) + ")";
    document.getElementById("chosen").hidden = false;
    go.disabled = false;
  }

  document.getElementById("browse").addEventListener("click", function () { input.click(); });
  zone.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); input.click(); } });
  input.addEventListener("change", function () { choose(input.files[0]); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) { choose(e.dataTransfer.files[0]); }
  });

  function api(path, options) {
    options = options || {};
    options.headers = Object.assign({ "X-CSRF-Token": csrf, Accept: "application/json", "Accept-Language": locale }, options.headers || {});
    options.credentials = "same-origin";
    return fetch(path, options).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw new Error(body.detail || response.statusText); }
        return body;
      });
    });
  }

  go.addEventListener("click", function () {
    if (!chosen) { return; }
    var form = new FormData();
    form.append("file", chosen);
    form.append("on_existing", document.getElementById("on-existing").value);
    go.disabled = true;
    result.innerHTML = "";
    progress.hidden = false;
    bar.removeAttribute("value");
    status.textContent = text.uploading;
    api("/api/v1/imports", { method: "POST", body: form }).then(function (job) {
      poll(job.id);
    }).catch(function (error) { fail(error.message); });
  });

  function poll(id) {
    api("/api/v1/imports/" + id).then(function (job) {
      if (job.status === "queued" || job.status === "processing") {
        if (job.rows_total) {
          bar.max = job.rows_total;
          bar.value = job.rows_processed;
          status.textContent = fmt(text.checking, { done: job.rows_processed, total: job.rows_total });
        }
        setTimeout(function () { poll(id); }, 400);
        return;
      }
      finished(job);
    }).catch(function (error) { fail(error.message); });
  }

  function reset() {
    progress.hidden = true;
    chosen = null;
    input.value = "";
    document.getElementById("chosen").hidden = true;
    go.disabled = true;
  }

  function fail(message) {
    reset();
    result.appendChild(el("p", { "class": "alert error", role: "alert" }, [message || text.failed]));
  }

  function finished(job) {
    reset();
    if (job.status === "completed") {
      var message = job.created === 1 ? text.success_one : fmt(text.success, { count: job.created });
      window.kontakToast(message, "ok");
      result.appendChild(el("p", { "class": "alert ok" }, [job.message || message]));
      return;
    }
    if (job.status === "failed") { fail(job.message || text.failed); return; }
    var box = el("div", { "class": "alert error", role: "alert", id: "import-rejected" }, [
      el("p", {}, [el("strong", {}, [text.rejected])]),
      el("p", {}, [job.message || text.fix])
    ]);
    result.appendChild(box);
    var limit = "?limit=" + (shown + 1);
    Promise.all([
      api("/api/v1/imports/" + job.id + "/duplicates" + limit),
      api("/api/v1/imports/" + job.id + "/errors" + limit)
    ]).then(function (found) {
      var dupes = found[0], errors = found[1];
      function more(list, template, into) {
        if (list.length > shown) {
          into.appendChild(el("p", { "class": "muted more" }, [fmt(template, { count: shown })]));
        }
      }
      if (dupes.in_file.length || dupes.existing.length) {
        var panel = el("div", { "class": "duplicates", id: "duplicates", hidden: "" });
        var toggle = el("button", { type: "button", id: "see-duplicates", "aria-expanded": "false", "aria-controls": "duplicates" }, [text.see]);
        toggle.addEventListener("click", function () {
          var open = panel.hidden;
          panel.hidden = !open;
          toggle.setAttribute("aria-expanded", String(open));
          toggle.textContent = open ? text.hide : text.see;
        });
        if (dupes.in_file.length) {
          panel.appendChild(el("h3", {}, [text.in_file]));
          dupes.in_file.slice(0, shown).forEach(function (group) {
            var headers = Object.keys(group.rows[0].cells);
            panel.appendChild(el("h4", {}, [group.key + " " + group.value]));
            panel.appendChild(table([text.row].concat(headers), group.rows.slice(0, shown).map(function (r) {
              return [r.row].concat(headers.map(function (h) { return r.cells[h]; }));
            })));
            more(group.rows, text.first_rows, panel);
          });
          more(dupes.in_file, text.first_shown, panel);
        }
        if (dupes.existing.length) {
          panel.appendChild(el("h3", {}, [text.existing]));
          panel.appendChild(table([text.row, text.column, text.value, text.contact], dupes.existing.slice(0, shown).map(function (e) {
            return [e.row, e.key, e.value, el("a", { href: "/contacts/" + e.contact_id }, [e.contact_id])];
          })));
          more(dupes.existing, text.first_shown, panel);
        }
        result.appendChild(el("div", { "class": "actions" }, [toggle]));
        result.appendChild(panel);
      }
      if (errors.length) {
        result.appendChild(el("h3", {}, [text.invalid]));
        result.appendChild(table([text.row, text.column, text.value, text.problem], errors.slice(0, shown).map(function (e) {
          return [e.row, e.column, e.value, e.message];
        })));
        more(errors, text.first_shown, result);
      }
      result.appendChild(el("p", {}, [text.report + ": ",
        el("a", { href: "/api/v1/imports/" + job.id + "/report?format=csv" }, [".CSV"]), " ",
        el("a", { href: "/api/v1/imports/" + job.id + "/report?format=xlsx" }, [".XLSX"])]));
    });
  }
})();
