// imagegate console: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("playground");
  if (form) {
    form.addEventListener("submit", () => {
      const run = document.getElementById("pg-run");
      const busy = document.getElementById("pg-busy");
      if (run) { run.disabled = true; }
      if (busy) { busy.hidden = false; }
    });
  }
  for (const button of document.querySelectorAll("button.copy[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy || "");
      if (!source || !navigator.clipboard) { return; }
      await navigator.clipboard.writeText(source.textContent || "");
      button.textContent = "Copied";
    });
  }
});
