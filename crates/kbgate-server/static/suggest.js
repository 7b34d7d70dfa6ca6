// Title suggestions for the portal's search boxes, as the user types.
//
// First-party, loaded with `defer` under the CSP `script-src 'self'`; the search works
// without it (a plain GET form). It follows the WAI-ARIA editable combobox with list
// autocomplete pattern: the input gets role=combobox, aria-autocomplete=list,
// aria-expanded and aria-controls naming a role=listbox popup; arrow keys move
// aria-activedescendant over role=option items, Enter opens the active one, Escape closes
// (evidence: MDN "ARIA: combobox role"; WAI-ARIA APG "Editable Combobox With List
// Autocomplete"). Suggestions come from `/suggest?q=` (only titles the viewer may read,
// checked by the server) and are written with textContent, never as HTML.
(function () {
  "use strict";
  var DELAY_MS = 150;
  var MIN_CHARS = 2;
  // This file is served at <prefix>/assets/suggest.js: `/suggest` under the same prefix
  // (the portal may be mounted under a path, `[portal] public_url`).
  var me = document.currentScript;
  var SUGGEST = me ? new URL("../suggest", me.src).pathname : "/suggest";

  function enhance(input, n) {
    var form = input.form;
    if (!form) { return; }
    var list = document.createElement("ul");
    list.id = "suggest-" + n;
    list.className = "suggest";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Suggested pages");
    list.hidden = true;
    form.appendChild(list);
    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("autocomplete", "off");

    var items = [];
    var active = -1;
    var timer = null;
    var asked = "";

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function mark(i) {
      items.forEach(function (li, j) {
        li.setAttribute("aria-selected", j === i ? "true" : "false");
      });
      active = i;
      if (i >= 0) {
        input.setAttribute("aria-activedescendant", items[i].id);
        items[i].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function show(suggestions) {
      list.textContent = "";
      items = suggestions.map(function (s, i) {
        var li = document.createElement("li");
        li.id = list.id + "-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.url = s.url;
        var title = document.createElement("span");
        title.textContent = s.title;
        var space = document.createElement("span");
        space.className = "muted";
        space.textContent = " " + s.space_key;
        li.appendChild(title);
        li.appendChild(space);
        // mousedown, not click: it comes before the input's blur closes the list.
        li.addEventListener("mousedown", function (e) {
          e.preventDefault();
          window.location.assign(s.url);
        });
        list.appendChild(li);
        return li;
      });
      active = -1;
      if (items.length === 0) { close(); return; }
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function ask() {
      var q = input.value.trim();
      if (q.length < MIN_CHARS) { asked = q; close(); return; }
      if (q === asked && !list.hidden) { return; }
      asked = q;
      fetch(SUGGEST + "?q=" + encodeURIComponent(q), {
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (r) {
        return r.ok ? r.json() : { suggestions: [] };
      }).then(function (body) {
        // An answer to an older question is dropped.
        if (input.value.trim() === q) { show(body.suggestions || []); }
      }).catch(close);
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, DELAY_MS);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" && items.length) {
        e.preventDefault();
        if (list.hidden) { list.hidden = false; input.setAttribute("aria-expanded", "true"); }
        mark((active + 1) % items.length);
      } else if (e.key === "ArrowUp" && items.length && !list.hidden) {
        e.preventDefault();
        mark(active <= 0 ? items.length - 1 : active - 1);
      } else if (e.key === "Enter" && active >= 0 && !list.hidden) {
        e.preventDefault();
        window.location.assign(items[active].dataset.url);
      } else if (e.key === "Escape" && !list.hidden) {
        e.preventDefault();
        close();
      }
    });
    input.addEventListener("blur", close);
  }

  var inputs = document.querySelectorAll("input[type=search][name=q]");
  for (var i = 0; i < inputs.length; i++) { enhance(inputs[i], i); }
})();
