/* The script-tag embed, served by the app at /embed.js:
 *
 *   <script src="http://HOST:7860/embed.js" data-title="Ask the source" data-greeting="…" data-examples="Q1|Q2"
 *           data-color="#1d4ed8" data-position="bottom-right" data-open="false" defer></script>
 *
 * It adds a launcher button that opens the app's /widget/ in a panel. The widget stays in an iframe, so the app's
 * Content-Security-Policy frame-ancestors keeps deciding which pages may show it; the button and the panel live in a
 * shadow root, so the host page's CSS does not reach them. Written by hand: a launcher is a few DOM nodes, and a
 * framework or a CDN would be a dependency of every page that embeds it.
 */
(() => {
  "use strict";
  const NAME = "Ask-the-source embed";
  const script = document.currentScript;
  if (!script || window.__ragEmbedLoaded) return;
  window.__ragEmbedLoaded = true;

  const base = new URL("./", script.src);
  const appOrigin = base.origin;
  const data = script.dataset;
  const title = (data.title || "Ask the source").slice(0, 80);
  const color = data.color && CSS.supports("color", data.color) ? data.color : "#1d4ed8";
  const side = data.position === "bottom-left" ? "left" : "right";
  const openKey = `rag-embed-open:${appOrigin}${base.pathname}`;
  const widgetUrl = new URL("widget/", base);
  if (data.greeting) widgetUrl.searchParams.set("greeting", data.greeting);
  if (data.examples) widgetUrl.searchParams.set("examples", data.examples);

  const CSS_TEXT = `
    :host {all: initial}
    * {box-sizing: border-box}
    .launcher {position: fixed; bottom: 20px; ${side}: 20px; z-index: 2147483000; width: 56px; height: 56px;
      border: 0; border-radius: 50%; background: var(--rag-color); color: var(--rag-ink); cursor: pointer;
      display: grid; place-items: center; box-shadow: 0 6px 18px rgba(0, 0, 0, .28)}
    .launcher svg {width: 28px; height: 28px}
    .panel {position: fixed; bottom: 88px; ${side}: 20px; z-index: 2147483001; width: 400px;
      height: min(640px, calc(100vh - 108px)); display: flex; flex-direction: column; overflow: hidden;
      border-radius: 14px; background: #ffffff; color: #111827; box-shadow: 0 12px 40px rgba(0, 0, 0, .3);
      font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif}
    .panel[hidden] {display: none}
    .bar {display: flex; align-items: center; justify-content: space-between; gap: 8px; padding: 8px 8px 8px 16px;
      background: var(--rag-color); color: var(--rag-ink)}
    .title {font-weight: 600; font-size: 16px; margin: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap}
    .close {flex: none; width: 40px; height: 40px; border: 0; border-radius: 8px; background: transparent;
      color: inherit; font: inherit; font-size: 24px; line-height: 1; cursor: pointer}
    .close:hover {background: rgba(127, 127, 127, .25)}
    .launcher:focus-visible, .close:focus-visible {outline: 3px solid var(--rag-ring); outline-offset: 2px}
    iframe {flex: 1; width: 100%; border: 0; background: #ffffff; color-scheme: normal}
    @media (max-width: 480px) {
      .panel {top: 0; bottom: 0; left: 0; right: 0; width: auto; height: auto; border-radius: 0}
    }
    @media (prefers-color-scheme: dark) {
      .panel {background: #0b0f19; color: #f3f4f6; box-shadow: 0 12px 40px rgba(0, 0, 0, .7)}
      iframe {background: #0b0f19}
    }`;
  const ICON = `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round"
    stroke-linejoin="round" aria-hidden="true" focusable="false"><path d="M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.9A8 8 0
    1 1 21 12z"/><path d="M9.5 9.5a2.5 2.5 0 1 1 3.4 2.3c-.6.3-.9.8-.9 1.4V14"/><path d="M12 17h.01"/></svg>`;

  /** The text colour (near-black or white) with the better WCAG contrast on the launcher's colour. */
  function inkFor(background, root) {
    const probe = document.createElement("span");
    probe.style.color = background;
    root.appendChild(probe);
    const [r, g, b] = getComputedStyle(probe).color.match(/[\d.]+/g).map(Number);
    probe.remove();
    const linear = (c) => (c / 255 <= 0.03928 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4);
    const luminance = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
    return 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.062 ? "#ffffff" : "#111827";
  }

  function build() {
    const host = document.createElement("div");
    host.setAttribute("data-rag-embed", "");
    const root = host.attachShadow({ mode: "open" });
    root.innerHTML = `<style>${CSS_TEXT}</style>
      <div class="panel" id="panel" role="dialog" aria-labelledby="title" hidden>
        <div class="bar"><div class="title" id="title"></div>
          <button type="button" class="close" aria-label="Close chat">&times;</button></div>
      </div>
      <button type="button" class="launcher" aria-expanded="false" aria-controls="panel">${ICON}</button>`;
    document.body.appendChild(host);
    const ink = inkFor(color, root);
    host.style.setProperty("--rag-color", color);
    host.style.setProperty("--rag-ink", ink);
    host.style.setProperty("--rag-ring", ink === "#ffffff" ? color : "#111827");
    const panel = root.querySelector(".panel");
    const launcher = root.querySelector(".launcher");
    root.querySelector(".title").textContent = title;
    launcher.setAttribute("aria-label", `Open chat: ${title}`);
    launcher.title = title;

    let frame = null;
    let ready = false; // the widget said it can take focus
    let focusWanted = false;
    const focusWidget = () => frame.contentWindow.postMessage({ type: "rag-embed-focus" }, appOrigin);

    function open(moveFocus) {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.title = title;
        frame.src = widgetUrl.href;
        panel.appendChild(frame);
      }
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
      launcher.setAttribute("aria-label", `Close chat: ${title}`);
      remember(true);
      if (moveFocus) {
        frame.focus();
        if (ready) focusWidget();
        else focusWanted = true;
      }
    }

    function close() {
      panel.hidden = true;
      launcher.setAttribute("aria-expanded", "false");
      launcher.setAttribute("aria-label", `Open chat: ${title}`);
      remember(false);
      launcher.focus();
    }

    launcher.addEventListener("click", () => (panel.hidden ? open(true) : close()));
    root.querySelector(".close").addEventListener("click", close);
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !panel.hidden) {
        event.stopPropagation();
        close();
      }
    });
    // Keys pressed inside the widget never reach this page: the widget posts Escape and its readiness instead.
    window.addEventListener("message", (event) => {
      if (!frame || event.source !== frame.contentWindow || event.origin !== appOrigin) return;
      const type = event.data && event.data.type;
      if (type === "rag-embed-close" && !panel.hidden) close();
      if (type === "rag-embed-ready") {
        ready = true;
        if (focusWanted) focusWidget();
        focusWanted = false;
      }
    });
    const remembered = recall();
    if (remembered === null ? data.open === "true" : remembered) open(false);
  }

  /** Whether the panel was open before a reload of this tab (the conversation itself lives in the widget's tab storage). */
  function recall() {
    try {
      const value = sessionStorage.getItem(openKey);
      return value === null ? null : value === "1";
    } catch {
      return null;
    }
  }

  function remember(isOpen) {
    try {
      sessionStorage.setItem(openKey, isOpen ? "1" : "0");
    } catch {
      /* storage blocked: the panel starts closed after a reload */
    }
  }

  /** The app answers CORS only for origins in RAG_ALLOWED_ORIGINS; any other page gets no launcher and a reason. */
  async function start() {
    try {
      await fetch(new URL("api/health", base), { mode: "cors", credentials: "omit", cache: "no-store" });
    } catch {
      let reachable = true;
      try {
        await fetch(new URL("api/health", base), { mode: "no-cors", credentials: "omit", cache: "no-store" });
      } catch {
        reachable = false;
      }
      console.error(
        reachable
          ? `${NAME}: this page's origin ${location.origin} is not in RAG_ALLOWED_ORIGINS of ${appOrigin}, so the ` +
              "chat launcher is not shown. Add the origin to RAG_ALLOWED_ORIGINS and restart the app."
          : `${NAME}: ${appOrigin} cannot be reached, so the chat launcher is not shown.`,
      );
      return;
    }
    if (document.body) build();
    else document.addEventListener("DOMContentLoaded", build, { once: true });
  }

  start();
})();
