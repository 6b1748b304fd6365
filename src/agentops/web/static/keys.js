// Keyboard-first pages: Enter triggers the page's main button even before anything has focus.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Enter" || event.defaultPrevented) return;
  const active = document.activeElement;
  if (active && active !== document.body) return;
  const main = document.querySelector("[data-enter]");
  if (main) { event.preventDefault(); main.click(); }
});
