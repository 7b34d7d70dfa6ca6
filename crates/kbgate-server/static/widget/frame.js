/* kbgate help widget, inside the frame (kbgate's origin). The sign-in token lives in this
 * closure only: no cookie (third-party cookies are blocked or partitioned in frames), no
 * storage, never posted to the host page. Codes are accepted only from the parent window and
 * only when the message comes from the host origin kbgate checked against
 * [widget] allowed_origins (the same origin is the frame's only frame-ancestor). */
(function () {
  "use strict";
  var host = document.body.getAttribute("data-host-origin");
  // The path prefix kbgate is served under ("" at the root; [portal] public_url).
  var base = document.body.getAttribute("data-base") || "";
  var token = null, hostPath = "/", retried = false, resume = null;
  var $ = function (id) { return document.getElementById(id); };
  function show(id, on) { $(id).hidden = !on; }
  function status(text) { $("status").textContent = text; show("status", !!text); }
  function toHost(msg) { window.parent.postMessage(msg, host); }
  function api(path, opts) {
    opts = opts || {};
    opts.headers = Object.assign({ Accept: "application/json" }, opts.headers || {});
    if (token) opts.headers["X-Kbgate-Widget"] = token;
    opts.credentials = "omit";
    return fetch(base + path, opts).then(function (r) {
      if (r.status === 401 && token) { expired(); return Promise.reject("expired"); }
      if (!r.ok) return Promise.reject(r.status);
      return r.status === 204 ? null : r.json();
    });
  }
  function signedOut(text) {
    token = null;
    resume = null;
    ["search", "suggested", "results", "article", "signout"].forEach(function (id) { show(id, false); });
    $("who").textContent = "";
    show("signin", true);
    status(text);
  }
  function expired() {
    token = null;
    if (retried) return signedOut("Your sign-in has ended.");
    retried = true;
    status("Signing in again\u2026");
    toHost({ type: "kbgate:need-code" });
  }
  function signIn(code) {
    status("Signing in\u2026");
    fetch(base + "/widget/session", {
      method: "POST", credentials: "omit",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ code: code })
    }).then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) {
        token = j.token;
        retried = false;
        $("who").textContent = j.email;
        show("signin", false);
        show("signout", true);
        show("search", true);
        status("");
        suggest();
        // What the ended sign-in interrupted, done again under the new one.
        var again = resume;
        resume = null;
        if (again) again();
      })
      .catch(function () { signedOut("You could not be signed in."); });
  }
  function item(list, hit) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = base + "/pages/" + encodeURIComponent(hit.id);
    a.textContent = hit.title;
    a.setAttribute("data-page", hit.id);
    li.appendChild(a);
    if (hit.excerpt) {
      var p = document.createElement("p");
      p.className = "excerpt";
      p.textContent = hit.excerpt;
      li.appendChild(p);
    }
    list.appendChild(li);
  }
  function fill(listId, sectionId, hits, empty) {
    var list = $(listId);
    list.textContent = "";
    hits.forEach(function (h) { item(list, h); });
    if (!hits.length && empty) {
      var li = document.createElement("li");
      li.textContent = empty;
      list.appendChild(li);
    }
    show(sectionId, hits.length > 0 || !!empty);
  }
  function suggest() {
    api("/api/v1/suggest?path=" + encodeURIComponent(hostPath)).then(function (j) {
      fill("suggested-list", "suggested", j.hits, null);
    }).catch(function () {});
  }
  function search(q) {
    show("article", false);
    show("results", false);
    $("results-list").textContent = "";
    status("");
    api("/api/v1/search?limit=10&q=" + encodeURIComponent(q)).then(function (j) {
      fill("results-list", "results", j.hits, "Nothing found.");
    }).catch(function (e) {
      if (e === "expired") resume = function () { search(q); };
      else status("Search failed.");
    });
  }
  function openPage(id) {
    api("/api/v1/pages/" + encodeURIComponent(id)).then(function (j) {
      $("article-title").textContent = j.title;
      // Sanitised on the server (ARCHITECTURE.md, S4), and this document's CSP runs no inline script.
      $("article-body").innerHTML = j.html;
      // Attachment bytes need a portal session, which a frame on another site does not get:
      // images become links that open them in the portal.
      Array.prototype.forEach.call($("article-body").querySelectorAll("img"), function (img) {
        var src = new URL(img.getAttribute("src") || "", location.href);
        if (src.origin !== location.origin) return;
        var a = document.createElement("a");
        a.href = src.href;
        a.textContent = "Image: " + (img.getAttribute("alt") || src.pathname.split("/").pop());
        img.replaceWith(a);
      });
      $("article-open").href = j.url;
      ["suggested", "results"].forEach(function (s) { show(s, false); });
      show("article", true);
      $("article-title").focus();
    }).catch(function (e) {
      if (e === "expired") resume = function () { openPage(id); };
      else status("This article is not available to you.");
    });
  }
  function back() {
    show("article", false);
    show("results", $("results-list").children.length > 0);
    show("suggested", $("suggested-list").children.length > 0);
    $("q").focus();
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[href]");
    if (!a || a.id === "article-open") return;
    var url = new URL(a.getAttribute("href"), location.href);
    var m = url.origin === location.origin && url.pathname.slice(0, base.length) === base &&
      url.pathname.slice(base.length).match(/^\/pages\/([A-Za-z0-9-]+)$/);
    if (m) { e.preventDefault(); openPage(decodeURIComponent(m[1])); return; }
    // Anything else (attachments, other sites) opens outside the frame.
    a.target = "_blank";
    a.rel = "noopener noreferrer";
  });
  $("search").addEventListener("submit", function (e) {
    e.preventDefault();
    var q = $("q").value.trim();
    if (q) search(q);
  });
  $("back").addEventListener("click", back);
  $("signin").addEventListener("click", function () { retried = true; toHost({ type: "kbgate:need-code" }); });
  $("signout").addEventListener("click", function () {
    api("/widget/signout", { method: "POST" }).catch(function () {}).then(function () {
      signedOut("You are signed out.");
      $("signin").focus();
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape") toHost({ type: "kbgate:close" });
  });
  window.addEventListener("focus", function () {
    if (document.activeElement === document.body) {
      var f = !$("search").hidden ? $("q") : !$("signin").hidden ? $("signin") : null;
      if (f) f.focus();
    }
  });
  window.addEventListener("message", function (e) {
    if (e.source !== window.parent || e.origin !== host) return;
    var d = e.data || {};
    if (d.type === "kbgate:code" && typeof d.code === "string") {
      if (typeof d.path === "string" && d.path.charAt(0) === "/") hostPath = d.path;
      signIn(d.code);
    } else if (d.type === "kbgate:no-code") {
      signedOut("Sign in to the application to read the help articles.");
    }
  });
  toHost({ type: "kbgate:need-code" });
})();
