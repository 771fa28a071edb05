() => {
  // Run by Gradio when the chat or the widget page loads.

  // Gradio lists starter questions as buttons inside role="list", which screen readers cannot read as a list (and
  // axe-core reports as critical): name the buttons' box a group instead.
  const groupExamples = () => {
    for (const box of document.querySelectorAll(".examples[role=list]")) {
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Starter questions");
    }
  };
  groupExamples();
  new MutationObserver(groupExamples).observe(document.body, { childList: true, subtree: true });

  // Inside the launcher's iframe (embed.js), keys pressed here never reach the host page, so Escape is posted to it;
  // and the launcher asks for focus on the question box once this page says it is ready.
  if (window.parent === window) return;
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") window.parent.postMessage({ type: "rag-embed-close" }, "*");
  });
  window.addEventListener("message", (event) => {
    if (event.source !== window.parent || !event.data || event.data.type !== "rag-embed-focus") return;
    const focus = (tries) => {
      const box = document.querySelector("#rag-input textarea");
      if (box) box.focus();
      else if (tries > 0) setTimeout(() => focus(tries - 1), 100);
    };
    focus(100);
  });
  window.parent.postMessage({ type: "rag-embed-ready" }, "*");
}
