/* kbgate help widget: include on the host app's pages with
 *   <script src="https://kb.example.com/widget.js" data-kbgate-handover="/kb-code" async></script>
 * It adds a help button and a panel holding an <iframe> of kbgate's /widget/frame. Every
 * article is rendered by kbgate inside that frame (kbgate's origin): this script never sees
 * content or the frame's sign-in token. It only fetches a one-time code from the host app's own
 * backend (data-kbgate-handover) and posts it to the frame, addressed to kbgate's origin.
 * No inline style or script is injected: styles are set property by property through the
 * CSSOM (element.style.setProperty), which CSP does not block (MDN, "CSP: style-src": only the
 * style attribute, setAttribute("style") and cssText are), so the host page needs only
 *   script-src <kbgate>; frame-src <kbgate>. */
(function () {
  "use strict";
  var me = document.currentScript;
  if (!me || window.kbgateWidget) return;
  var src = new URL(me.src, location.href);
  var kb = src.origin;
  // kbgate may be mounted under a path ([portal] public_url): its frame is next to this file.
  var base = kb + src.pathname.replace(/\/widget\.js$/, "");
  var handover = me.getAttribute("data-kbgate-handover");
  var label = me.getAttribute("data-kbgate-label") || "Help";
  var btn, panel, frame, closer, isOpen = false;

  function css(el, rules) {
    for (var k in rules) el.style.setProperty(k, rules[k]);
    return el;
  }
  function el(tag, attrs) {
    var e = document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function post(msg) {
    if (frame && frame.contentWindow) frame.contentWindow.postMessage(msg, kb);
  }
  function sendCode() {
    if (!handover) return post({ type: "kbgate:no-code" });
    fetch(handover, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (j) {
        var code = j.code || (j.url && new URL(j.url).searchParams.get("code"));
        post({ type: "kbgate:code", code: code, path: location.pathname });
      })
      .catch(function () { post({ type: "kbgate:no-code" }); });
  }
  function open() {
    if (isOpen || !panel) return;
    if (!frame) {
      frame = css(el("iframe", {
        title: label,
        src: base + "/widget/frame?host=" + encodeURIComponent(location.origin)
      }), { border: "0", width: "100%", height: "100%", display: "block" });
      panel.insertBefore(frame, panel.lastChild);
    }
    isOpen = true;
    css(panel, { display: "flex" });
    btn.setAttribute("aria-expanded", "true");
    frame.focus();
  }
  function close() {
    if (!isOpen) return;
    isOpen = false;
    css(panel, { display: "none" });
    btn.setAttribute("aria-expanded", "false");
    btn.focus();
  }
  function build() {
    var focusRing = function (e, on) {
      css(e, { outline: on ? "3px solid #ffbf47" : "none", "outline-offset": "2px" });
    };
    btn = css(el("button", { type: "button", "aria-expanded": "false",
                             "aria-controls": "kbgate-panel", "data-kbgate": "button" }), {
      position: "fixed", right: "20px", bottom: "20px", "z-index": "2147483000",
      padding: "10px 18px", border: "0", "border-radius": "999px", cursor: "pointer",
      background: "#1d4ed8", color: "#ffffff", font: "600 15px/1.2 system-ui, sans-serif",
      "box-shadow": "0 2px 8px rgba(0,0,0,.25)"
    });
    btn.textContent = label;
    panel = css(el("div", { id: "kbgate-panel", role: "dialog", "aria-modal": "true",
                            "aria-label": label, "data-kbgate": "panel" }), {
      position: "fixed", right: "20px", bottom: "72px", width: "min(400px, calc(100vw - 40px))",
      height: "min(600px, calc(100vh - 100px))", display: "none", "flex-direction": "column",
      background: "#ffffff", "border-radius": "8px", "z-index": "2147483001",
      "box-shadow": "0 8px 30px rgba(0,0,0,.3)", overflow: "hidden"
    });
    // Focus trap: sentinels at both ends send focus back into the panel.
    var first = el("span", { tabindex: "0", "data-kbgate": "sentinel" });
    var last = el("span", { tabindex: "0", "data-kbgate": "sentinel" });
    closer = css(el("button", { type: "button", "aria-label": "Close " + label,
                                "data-kbgate": "close" }), {
      "align-self": "flex-end", margin: "4px", padding: "4px 10px", border: "0",
      background: "transparent", color: "#1f2937", font: "20px/1 system-ui, sans-serif",
      cursor: "pointer"
    });
    closer.textContent = "\u00d7";
    [btn, closer].forEach(function (b) {
      b.addEventListener("focus", function () { focusRing(b, true); });
      b.addEventListener("blur", function () { focusRing(b, false); });
    });
    first.addEventListener("focus", function () { frame ? frame.focus() : closer.focus(); });
    last.addEventListener("focus", function () { closer.focus(); });
    panel.appendChild(first);
    panel.appendChild(closer);
    panel.appendChild(last);
    btn.addEventListener("click", function () { isOpen ? close() : open(); });
    closer.addEventListener("click", close);
    panel.addEventListener("keydown", function (e) {
      if (e.key === "Escape") { e.preventDefault(); close(); }
    });
    document.addEventListener("focusin", function (e) {
      if (isOpen && !panel.contains(e.target) && e.target !== btn) closer.focus();
    });
    window.addEventListener("message", function (e) {
      if (!frame || e.source !== frame.contentWindow || e.origin !== kb) return;
      var t = e.data && e.data.type;
      if (t === "kbgate:need-code") sendCode();
      else if (t === "kbgate:close") close();
    });
    document.body.appendChild(btn);
    document.body.appendChild(panel);
  }
  window.kbgateWidget = { open: function () { open(); }, close: function () { close(); } };
  if (document.body) build();
  else document.addEventListener("DOMContentLoaded", build);
})();
