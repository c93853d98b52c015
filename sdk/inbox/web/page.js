// What every view of the web inbox shares: who is signed in, the main region and the live
// region, alerts, and polling (conditional requests every 2 s, paused in a hidden tab).

import { ApiError, setCsrfToken } from "./api.js";
import { h } from "./dom.js";

export const session = { me: null };
let router = () => {};

/** The function that shows the view of the current address (set once by the inbox). */
export function setRouter(fn) {
  router = fn;
}

export function route() {
  return router();
}

const POLL_MS = 2000;
export const ENDED = new Set(["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"]);
const main = document.getElementById("main");
const live = document.getElementById("live");
let poller = null;

export function announce(text) {
  live.textContent = "";
  // A new text node in the live region after a tick, so repeated messages are read again.
  window.setTimeout(() => { live.textContent = text; }, 50);
}

export function stopPolling() {
  if (poller) window.clearInterval(poller);
  poller = null;
  pollNow = null;
}

export function poll(fn) {
  stopPolling();
  // A hidden tab asks nothing; it catches up as soon as it is shown again.
  const tick = () => {
    if (document.hidden) return;
    fn().catch((err) => {
      // The session ended (expired, or signed out elsewhere): back to the sign-in page.
      if (err instanceof ApiError && err.status === 401) {
        setSignedIn(null);
        announce("Your session has ended: sign in again");
        route();
      }
    });
  };
  poller = window.setInterval(tick, POLL_MS);
  pollNow = tick;
}

let pollNow = null;
document.addEventListener("visibilitychange", () => { if (!document.hidden && pollNow) pollNow(); });

/** Replace the main content; focus the new view's heading so screen readers read it. */
export function show(title, ...content) {
  main.replaceChildren(...content);
  document.title = `${title} · Task inbox`;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

export function alertBox(id) {
  return h("div", { id, class: "alert", role: "alert", hidden: true });
}

export function showAlert(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

export function problemText(err) {
  if (err instanceof ApiError) return err.problem.detail || err.problem.title || err.message;
  return String(err && err.message ? err.message : err);
}

export function setSignedIn(info) {
  session.me = info;
  setCsrfToken(info ? info.csrf_token : null);
  document.getElementById("nav").hidden = !info;
  document.getElementById("who").hidden = !info;
  if (info) {
    const groups = info.groups.length ? ` (groups: ${info.groups.join(", ")})` : "";
    document.getElementById("who-text").textContent = `Signed in as ${info.user}${groups}`;
  }
}

export function isPending(task) {
  return String(task.status).toLowerCase() === "pending";
}

export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}
