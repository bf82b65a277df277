// Copy buttons: <button data-copy="#element-id"> copies that input's value or element's text.
// The clipboard API needs a secure context (https or localhost); elsewhere the text is
// selected so Ctrl-C finishes the job. The button says what happened, then goes back to its
// label: a "Copied" left for ever would say the same after the next click, or a stale copy.
const COPY_FEEDBACK_MS = 2000;

function select(source) {
  if (source.select) {
    source.select();
    return;
  }
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

function say(button, text) {
  button.dataset.label ??= button.textContent;
  button.textContent = text;
  clearTimeout(button.copyTimer);
  button.copyTimer = setTimeout(() => {
    button.textContent = button.dataset.label;
  }, COPY_FEEDBACK_MS);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  const text = source.value ?? source.textContent.trim();
  const byHand = () => {
    select(source);
    say(button, "Press Ctrl-C to copy");
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(() => say(button, "Copied"), byHand);
  } else {
    byHand();
  }
});
