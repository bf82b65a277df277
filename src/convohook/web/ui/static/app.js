// Copy buttons: <button data-copy="#input-id">. The clipboard API needs a secure context
// (https or localhost); elsewhere the text is selected so Ctrl-C finishes the job.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.value ?? source.textContent;
  const done = () => { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, () => source.select?.());
  } else {
    source.select?.();
    button.textContent = "Press Ctrl-C to copy";
  }
});
