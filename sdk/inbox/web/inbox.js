// The web inbox: sign in, my tasks and my groups' tasks, a task with its form, comments,
// assignment trail and instance diagram. Plain DOM, no framework; every view is reached by a
// link (#/, #/tasks/ID, #/instances/ID) and works with the keyboard alone. Changes made
// elsewhere show up without a reload: the open view polls the API with conditional requests
// (ETag) and announces what changed in a polite live region.

import { ApiError, api } from "./api.js";
import { h, when } from "./dom.js";
import { instanceView } from "./instance.js";
import {
  alertBox, announce, poll, problemText, route, session, setRouter, setSignedIn, show,
  showAlert, stopPolling,
} from "./page.js";
import { taskView } from "./task.js";

// -- session -------------------------------------------------------------------------------

async function loadSession() {
  try {
    const { data } = await api("session");
    setSignedIn(data);
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401) throw err;
    setSignedIn(null);
  }
}

async function signInView() {
  stopPolling();
  let users = [];
  try {
    users = (await api("session/users")).data || [];
  } catch {
    users = [];
  }
  const error = alertBox("signin-error");
  const forms = [];
  if (users.length) {
    const select = h("select", { id: "dev-user", name: "user" }, users.map((u) => h("option", { value: u }, u)));
    forms.push(
      h("form", { id: "dev-signin", class: "card", onsubmit: (e) => signIn(e, "session/dev", { user: select.value }, error) },
        h("h2", {}, "Development: pick a user"),
        h("div", { class: "field" }, h("label", { for: "dev-user" }, "User"), select),
        h("button", { type: "submit" }, "Sign in")),
    );
  }
  const token = h("textarea", { id: "token", name: "token", rows: 3, autocomplete: "off", spellcheck: "false", "aria-describedby": "token-hint" });
  forms.push(
    h("form", { id: "token-signin", class: "card", onsubmit: (e) => signIn(e, "session/token", { token: token.value.trim() }, error) },
      h("h2", {}, "Sign in with a token"),
      h("div", { class: "field" },
        h("label", { for: "token" }, "Token"),
        h("p", { class: "hint", id: "token-hint" }, "Paste the token your organisation's sign-in gave you."),
        token),
      h("button", { type: "submit" }, "Sign in with token")),
  );
  show("Sign in", h("h1", {}, "Sign in"), error, ...forms);
}

async function signIn(event, path, body, error) {
  event.preventDefault();
  showAlert(error, "");
  try {
    const { data } = await api(path, { method: "POST", body });
    setSignedIn(data);
    announce(`Signed in as ${data.user}`);
    await route();
  } catch (err) {
    showAlert(error, `Sign-in failed: ${problemText(err)}`);
  }
}

async function signOut() {
  try {
    await api("session", { method: "DELETE" });
  } catch {
    // Signed out already: the cookies are gone either way.
  }
  setSignedIn(null);
  announce("Signed out");
  location.hash = "#/";
  route();
}

// -- the inbox -----------------------------------------------------------------------------

function isMine(task) {
  const me = session.me.user;
  return task.assignee_id === me || task.claimed_by === me || (task.voters || []).includes(me);
}

function taskTable(tasks, caption, onClaim) {
  if (!tasks.length) return h("p", { class: "empty" }, "Nothing here.");
  return h("table", { class: "tasks" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {},
      ["Task", "Step", "Assigned to", "Claimed by", "Priority", "Follow up", "Due", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, tasks.map((task) => h("tr", { "data-task": task.id },
      h("th", { scope: "row" }, h("a", { href: `#/tasks/${task.id}` }, task.title)),
      h("td", {}, task.step_name),
      h("td", {}, [
        task.assignee_id,
        task.on_behalf_of && `on behalf of ${task.on_behalf_of}`,
        task.assignee_group && `group ${task.assignee_group}`,
        task.quorum && `vote: ${task.quorum} needed`,
      ].filter(Boolean).join(", ") || "—"),
      h("td", {}, task.claimed_by || "—"),
      h("td", { class: "priority" }, String(task.priority)),
      h("td", {}, when(task.follow_up_at)),
      h("td", {}, when(task.due_at)),
      h("td", {}, !task.quorum && !task.claimed_by && task.assignee_group && session.me.groups.includes(task.assignee_group)
        ? h("button", { type: "button", class: "claim", "aria-label": `Claim ${task.title}`, onclick: () => onClaim(task) }, "Claim")
        : "")))));
}

async function inboxView() {
  const error = alertBox("inbox-error");
  const mine = h("div", { id: "my-tasks" });
  const groups = h("div", { id: "group-tasks" });
  const mineCount = h("span", { class: "count" });
  const groupCount = h("span", { class: "count" });
  let etag = null;
  let known = null;
  const order = h("select", { id: "order-by", name: "order_by" },
    h("option", { value: "due" }, "Due date"),
    h("option", { value: "priority" }, "Priority"),
    h("option", { value: "follow_up" }, "Follow-up date"));
  order.value = session.orderBy || "due";
  order.addEventListener("change", async () => {
    session.orderBy = order.value;
    announce(`Sorted by ${order.selectedOptions[0].textContent.toLowerCase()}`);
    await refresh(true);
  });

  async function claim(task) {
    showAlert(error, "");
    try {
      await api(`tasks/${task.id}/claim`, { method: "POST" });
      announce(`You claimed ${task.title}`);
      await refresh(true);
    } catch (err) {
      showAlert(error, `Could not claim "${task.title}": ${problemText(err)}`);
      await refresh(true);
    }
  }

  async function refresh(force = false) {
    const answer = await api(`inbox?limit=200&order_by=${encodeURIComponent(order.value)}`, { etag: force ? null : etag });
    if (answer.notModified) return;
    etag = answer.etag;
    const tasks = answer.data.items;
    const ids = new Set(tasks.map((t) => t.id));
    if (known) {
      const added = tasks.filter((t) => !known.has(t.id)).length;
      const gone = [...known].filter((id) => !ids.has(id)).length;
      const parts = [added && `${added} new`, gone && `${gone} gone`].filter(Boolean);
      announce(`Inbox updated${parts.length ? `: ${parts.join(", ")}` : ""}`);
    }
    known = ids;
    const focusedTask = document.activeElement && document.activeElement.closest("[data-task]");
    const focusKey = focusedTask ? [focusedTask.dataset.task, document.activeElement.tagName] : null;
    const my = tasks.filter(isMine);
    const theirs = tasks.filter((t) => !isMine(t));
    mine.replaceChildren(taskTable(my, "My tasks", claim));
    groups.replaceChildren(taskTable(theirs, "My groups' tasks", claim));
    mineCount.textContent = ` (${my.length})`;
    groupCount.textContent = ` (${theirs.length})`;
    if (focusKey) {
      const again = main.querySelector(`[data-task="${focusKey[0]}"] ${focusKey[1] === "BUTTON" ? "button" : "a"}`);
      if (again) again.focus();
    }
  }

  show("My inbox",
    h("h1", {}, "My inbox"),
    error,
    h("div", { class: "field sort" }, h("label", { for: "order-by" }, "Sort by"), order),
    h("section", { "aria-labelledby": "mine-heading" }, h("h2", { id: "mine-heading" }, "My tasks", mineCount), mine),
    h("section", { "aria-labelledby": "groups-heading" }, h("h2", { id: "groups-heading" }, "My groups' tasks", groupCount), groups));
  await refresh(true);
  poll(() => refresh());
}

// -- routing -------------------------------------------------------------------------------

async function showCurrentView() {
  stopPolling();
  if (!session.me) return signInView();
  const path = location.hash.replace(/^#/, "") || "/";
  const task = path.match(/^\/tasks\/([^/]+)$/);
  const instance = path.match(/^\/instances\/([^/]+)$/);
  try {
    if (task) return await taskView(decodeURIComponent(task[1]));
    if (instance) return await instanceView(decodeURIComponent(instance[1]));
    return await inboxView();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setSignedIn(null);
      return signInView();
    }
    show("Error", h("h1", {}, "Something went wrong"), h("p", { role: "alert" }, problemText(err)));
  }
}

document.getElementById("sign-out").addEventListener("click", signOut);
setRouter(showCurrentView);
window.addEventListener("hashchange", route);
loadSession().then(showCurrentView, (err) => {
  show("Error", h("h1", {}, "The inbox cannot start"), h("p", { role: "alert" }, problemText(err)));
});
