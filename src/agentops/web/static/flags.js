// After the verdict: one key confirms (y) or disputes (n) the checks' flags.
document.addEventListener("keydown", (event) => {
  const target = { y: "confirm", n: "dispute" }[event.key];
  if (!target || event.ctrlKey || event.metaKey || event.altKey) return;
  event.preventDefault();
  document.getElementById(target).click();
});
