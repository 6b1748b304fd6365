// Keyboard-first review: 1-9 pick a criterion, p/f/n set it, Enter submits, s skips.
// The lease is renewed while the page is open and handed back when the reviewer leaves.
(function () {
  "use strict";
  const root = document.getElementById("review");
  if (!root) return;
  const item = root.dataset.item, token = root.dataset.token, csrf = root.dataset.csrf;
  const verdict = document.getElementById("verdict");
  const skip = document.getElementById("skip");
  const skipReason = document.getElementById("skip-reason");
  const lease = document.getElementById("lease");
  const criteria = Array.from(document.querySelectorAll(".criterion"));
  let current = 0;
  let leaving = false; // set when we submit or skip: no release on the way out

  function select(index) {
    if (index < 0 || index >= criteria.length) return;
    criteria.forEach((c, i) => c.classList.toggle("selected", i === index));
    current = index;
    criteria[index].scrollIntoView({ block: "nearest" });
  }

  function refresh(li) {
    const value = li.querySelector("input[type=radio]:checked").value;
    const needsNote = value === "fail" && li.dataset.severity !== "minor";
    li.classList.toggle("failed", value === "fail");
    li.classList.toggle("needs-note", needsNote);
    return needsNote;
  }

  function set(value) {
    const li = criteria[current];
    li.querySelector(`input[value=${value}]`).checked = true;
    if (refresh(li)) li.querySelector("textarea").focus();
  }

  function missingNote() {
    return criteria.find((li) => refresh(li) && !li.querySelector("textarea").value.trim());
  }

  function submit() {
    const missing = missingNote();
    if (missing) {
      select(criteria.indexOf(missing));
      lease.textContent = "A failed critical or major criterion needs a note.";
      missing.querySelector("textarea").focus();
      return;
    }
    leaving = true;
    HTMLFormElement.prototype.submit.call(verdict);
  }

  criteria.forEach((li, i) => {
    refresh(li);
    li.addEventListener("change", () => refresh(li));
    li.addEventListener("click", () => select(i));
  });
  select(0);

  verdict.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  skip.addEventListener("submit", () => { leaving = true; });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    const typing = target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement &&
      target.type === "text";
    if (event.key === "Escape") {
      if (!skip.hidden) { skip.hidden = true; }
      if (typing) target.blur();
      event.preventDefault();
      return;
    }
    if (typing) {
      // Enter in a note submits the verdict (Shift+Enter for a new line); in the skip box, the skip.
      if (event.key === "Enter" && !event.shiftKey && target instanceof HTMLTextAreaElement) {
        event.preventDefault();
        submit();
      }
      return;
    }
    if (/^[1-9]$/.test(event.key)) { select(Number(event.key) - 1); event.preventDefault(); }
    else if (event.key === "p") { set("pass"); event.preventDefault(); }
    else if (event.key === "f") { set("fail"); event.preventDefault(); }
    else if (event.key === "n") { set("na"); event.preventDefault(); }
    else if (event.key === "s") { skip.hidden = false; skipReason.focus(); event.preventDefault(); }
    else if (event.key === "Enter") { submit(); event.preventDefault(); }
  });

  function form() {
    return new URLSearchParams({ csrf: csrf, lease_token: token });
  }

  async function heartbeat() {
    try {
      const response = await fetch(`/review/items/${item}/heartbeat`, {
        method: "POST", body: form(), credentials: "same-origin",
      });
      const body = await response.json();
      if (!response.ok) { lease.textContent = body.message; lease.classList.add("error"); }
      else { lease.textContent = ""; }
    } catch (_) { /* offline for a moment: the next beat tries again */ }
  }
  setInterval(heartbeat, Number(root.dataset.heartbeat) * 1000);

  window.addEventListener("pagehide", () => {
    if (!leaving) navigator.sendBeacon(`/review/items/${item}/release`, form());
  });
})();
