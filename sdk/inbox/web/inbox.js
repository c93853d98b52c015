// The web inbox: sign in, my tasks and my groups' tasks, a task with its form, comments,
// assignment trail and instance diagram. Plain DOM, no framework; every view is reached by a
// link (#/, #/tasks/ID, #/instances/ID) and works with the keyboard alone. Changes made
// elsewhere show up without a reload: the open view polls the API with conditional requests
// (ETag) and announces what changed in a polite live region.

import { ApiError, api, setCsrfToken } from "./api.js";
import { drawFlowchart } from "./diagram.js";
import { h, when } from "./dom.js";
import { schemaForm } from "./form.js";

const POLL_MS = 2000;
const ENDED = new Set(["COMPLETED", "FAILED", "CANCELED", "TERMINATED", "TIMED_OUT"]);
const main = document.getElementById("main");
const live = document.getElementById("live");
let me = null;
let poller = null;

function announce(text) {
  live.textContent = "";
  // A new text node in the live region after a tick, so repeated messages are read again.
  window.setTimeout(() => { live.textContent = text; }, 50);
}

function stopPolling() {
  if (poller) window.clearInterval(poller);
  poller = null;
  pollNow = null;
}

function poll(fn) {
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
function show(title, ...content) {
  main.replaceChildren(...content);
  document.title = `${title} · Task inbox`;
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function alertBox(id) {
  return h("div", { id, class: "alert", role: "alert", hidden: true });
}

function showAlert(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

function problemText(err) {
  if (err instanceof ApiError) return err.problem.detail || err.problem.title || err.message;
  return String(err && err.message ? err.message : err);
}

// -- session -------------------------------------------------------------------------------

function setSignedIn(info) {
  me = info;
  setCsrfToken(info ? info.csrf_token : null);
  document.getElementById("nav").hidden = !info;
  document.getElementById("who").hidden = !info;
  if (info) {
    const groups = info.groups.length ? ` (groups: ${info.groups.join(", ")})` : "";
    document.getElementById("who-text").textContent = `Signed in as ${info.user}${groups}`;
  }
}

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

function isPending(task) {
  return String(task.status).toLowerCase() === "pending";
}

function isMine(task) {
  return task.assignee_id === me.user || task.claimed_by === me.user;
}

function taskTable(tasks, caption, onClaim) {
  if (!tasks.length) return h("p", { class: "empty" }, "Nothing here.");
  return h("table", { class: "tasks" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {},
      ["Task", "Step", "Assigned to", "Claimed by", "Due", "Actions"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, tasks.map((task) => h("tr", { "data-task": task.id },
      h("th", { scope: "row" }, h("a", { href: `#/tasks/${task.id}` }, task.title)),
      h("td", {}, task.step_name),
      h("td", {}, [task.assignee_id, task.assignee_group && `group ${task.assignee_group}`].filter(Boolean).join(", ") || "—"),
      h("td", {}, task.claimed_by || "—"),
      h("td", {}, when(task.due_at)),
      h("td", {}, !task.claimed_by && task.assignee_group && me.groups.includes(task.assignee_group)
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
    const answer = await api("inbox?limit=200", { etag: force ? null : etag });
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
    h("section", { "aria-labelledby": "mine-heading" }, h("h2", { id: "mine-heading" }, "My tasks", mineCount), mine),
    h("section", { "aria-labelledby": "groups-heading" }, h("h2", { id: "groups-heading" }, "My groups' tasks", groupCount), groups));
  await refresh(true);
  poll(() => refresh());
}

// -- a task ----------------------------------------------------------------------------------

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== undefined).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function describeTask(task) {
  return facts([
    ["Status", task.status.toLowerCase()],
    ["Assigned to", task.assignee_id || "—"],
    ["Group", task.assignee_group || "—"],
    ["Claimed by", task.claimed_by || "—"],
    ["Due", when(task.due_at)],
    ["Created", when(task.created_at)],
  ]);
}

function commentList(comments) {
  if (!comments.length) return h("p", { class: "empty" }, "No comments yet.");
  return h("ol", { class: "comments" }, comments.map((c) => h("li", {},
    h("p", { class: "meta" }, h("strong", {}, c.author), " · ", h("time", { datetime: c.posted_at }, when(c.posted_at))),
    h("p", {}, c.body))));
}

const TRAIL_WORDS = { claim: "claimed", release: "released", reassign: "reassigned", escalate: "escalated" };

function trailTable(assignments) {
  if (!assignments.length) return h("p", { class: "empty" }, "No changes of hands yet.");
  return h("table", { class: "trail" },
    h("caption", { class: "visually-hidden" }, "Assignment trail"),
    h("thead", {}, h("tr", {}, ["When", "What", "From", "To", "By", "Reason"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, assignments.map((a) => h("tr", {},
      h("td", {}, when(a.at)),
      h("td", {}, TRAIL_WORDS[a.action] || String(a.action)),
      h("td", {}, a.from_assignee || "—"),
      h("td", {}, a.to_assignee || "—"),
      h("td", {}, a.by_user || "—"),
      h("td", {}, a.reason || "—")))));
}

const STATE_WORDS = {
  PENDING: "pending", RUNNING: "running", WAITING: "waiting for a person", SUCCEEDED: "done",
  COMPLETED: "done", FAILED: "failed", SKIPPED: "skipped", CANCELED: "canceled", EXPIRED: "expired",
  TIMED_OUT: "timed out", COMPENSATED: "compensated",
};

const definitions = new Map();

/** The steps a workflow version declares ([{name, type}]), fetched once; [] when unknown. */
async function declaredSteps(instance) {
  const key = `${instance.workflow_name}@${instance.workflow_version}`;
  if (!definitions.has(key)) {
    const query = `definitions/${encodeURIComponent(instance.workflow_name)}?version=${encodeURIComponent(instance.workflow_version)}`;
    definitions.set(key, api(query).then(({ data }) => (data.definition && data.definition.steps) || [], () => []));
  }
  return definitions.get(key);
}

/** The instance's flowchart (from its Mermaid text), or null when the API has none for it. */
async function flowchart(instance) {
  let source;
  try {
    source = (await api(`instances/${instance.id}/diagram`)).data.mermaid;
  } catch {
    return null;
  }
  const name = `${instance.workflow_name} ${instance.workflow_version}`;
  return h("figure", { class: "flowchart-figure", id: "flowchart" },
    drawFlowchart(source, `Diagram of ${name}: each step with its state (also listed below)`),
    h("figcaption", {}, `Diagram of ${name}`),
    h("details", {}, h("summary", {}, "Mermaid source"), h("pre", {}, source)));
}

/** The instance as a flow of steps, each with its state: an ordered list drawn as a diagram. */
function diagram(detail, declared = []) {
  const { instance, steps, tasks } = detail;
  const waiting = new Set(tasks.filter((t) => isPending(t)).map((t) => t.step_execution_id));
  const ordered = [...steps].sort((a, b) => (a.step_seq ?? 0) - (b.step_seq ?? 0) || String(a.started_at).localeCompare(String(b.started_at)));
  const nodes = [h("li", { class: "node terminal" }, h("span", { class: "step-name" }, "Start"))];
  for (const step of ordered) {
    const state = waiting.has(step.id) ? "WAITING" : step.status;
    const kind = String(step.step_type).toLowerCase();
    nodes.push(h("li", { class: `node state-${state.toLowerCase()}`, "data-step": step.step_name, "data-state": state },
      h("span", { class: "step-name" }, step.step_name),
      h("span", { class: "step-kind" }, `${kind} step`),
      h("span", { class: "step-state" }, STATE_WORDS[state] || state.toLowerCase()),
      step.attempts > 1 ? h("span", { class: "step-kind" }, `${step.attempts} attempts`) : null));
  }
  const status = instance.status;
  if (ENDED.has(status)) {
    nodes.push(h("li", { class: `node terminal state-${status.toLowerCase()}`, "data-state": status },
      h("span", { class: "step-name" }, "End"), h("span", { class: "step-state" }, status.toLowerCase())));
  }
  const ran = new Set(steps.map((s) => s.step_name));
  const notRun = declared.filter((s) => s && s.name && !ran.has(s.name));
  const rest = notRun.length
    ? h("div", { class: "not-run" },
      h("h3", {}, ENDED.has(status) ? "Steps not run" : "Steps not reached yet"),
      h("ul", {}, notRun.map((s) => h("li", { "data-step": s.name, "data-state": "NOT_RUN" },
        `${s.name} (${String(s.type || "step").toLowerCase()} step)`))))
    : null;
  return h("div", { class: "diagram-wrap" },
    facts([
      ["Workflow", `${instance.workflow_name} ${instance.workflow_version}`],
      ["Status", h("span", { id: "instance-status", "data-status": status }, status.toLowerCase())],
      ["Started by", instance.created_by || "—"],
      ["Started", when(instance.started_at)],
    ]),
    h("ol", { class: "flow", "aria-label": `Steps of ${instance.workflow_name}, in order, with their states` }, nodes),
    rest);
}

async function taskView(taskId) {
  const error = alertBox("task-error");
  const header = h("div", { id: "task-facts" });
  const actions = h("div", { id: "task-actions", class: "actions" });
  const formArea = h("div", { id: "form-area" });
  const comments = h("div", { id: "comments" });
  const trail = h("div", { id: "trail" });
  const instanceArea = h("div", { id: "instance" });
  const title = h("h1", { id: "task-title" }, "Task");
  const description = h("p", { class: "description" });
  let last = null;
  let lastInstance = null;
  let formFor = null;

  async function act(path, done) {
    showAlert(error, "");
    try {
      await api(`tasks/${taskId}/${path}`, { method: "POST" });
      announce(done);
      await refresh();
    } catch (err) {
      showAlert(error, problemText(err));
      await refresh();
    }
  }

  function renderActions(task) {
    const buttons = [];
    if (isPending(task) && task.assignee_group && me.groups.includes(task.assignee_group)) {
      if (!task.claimed_by) buttons.push(h("button", { type: "button", id: "claim", onclick: () => act("claim", "You claimed this task") }, "Claim"));
      else if (task.claimed_by === me.user) buttons.push(h("button", { type: "button", id: "release", onclick: () => act("release", "You released this task") }, "Release"));
    }
    const focused = document.activeElement && document.activeElement.closest("#task-actions");
    actions.replaceChildren(...buttons);
    if (focused) (actions.querySelector("button") || main.querySelector("#task-form button") || title).focus();
  }

  function renderForm(detail) {
    const task = detail.task;
    if (!isPending(task)) {
      formFor = task.status;
      const shown = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
      const data = Object.entries(task.form_data || {}).map(([k, v]) => [k, shown(v)]);
      const outcome = h("p", { id: "task-outcome" }, `This task is ${task.status.toLowerCase()}${task.completed_by ? ` by ${task.completed_by}` : ""}.`);
      formArea.replaceChildren(outcome, ...(data.length ? [facts(data)] : []));
      return;
    }
    const blocked = task.require_claim && task.claimed_by !== me.user;
    const key = `PENDING:${blocked}`;
    if (formFor === key) return;
    formFor = key;
    const form = schemaForm(detail.form_schema, "f");
    const summary = h("div", { id: "form-errors", class: "alert", role: "alert", tabindex: "-1", hidden: true });
    const submit = h("button", { type: "submit", id: "complete" }, "Complete task");
    const element = h("form", { id: "task-form", novalidate: true, "aria-labelledby": "form-heading" },
      summary, form.element, submit);
    if (blocked) {
      form.setDisabled(true);
      submit.disabled = true;
    }
    element.addEventListener("submit", async (event) => {
      event.preventDefault();
      showAlert(summary, "");
      const { data, errors } = form.collect();
      if (errors.length) {
        form.showErrors(errors);
        announce(`${errors.length} field${errors.length > 1 ? "s need" : " needs"} attention`);
        return;
      }
      form.showErrors([]);
      submit.disabled = true;
      try {
        await api(`tasks/${taskId}/complete`, { method: "POST", body: { data } });
        announce("Task completed");
        await refresh();
      } catch (err) {
        submit.disabled = false;
        const unmatched = err instanceof ApiError ? form.showErrors(err.errors) : [];
        const fieldCount = err instanceof ApiError ? err.errors.length - unmatched.length : 0;
        if (!fieldCount || unmatched.length) {
          const extra = unmatched.map((e) => `${e.field}: ${e.message}`).join("; ");
          showAlert(summary, `${problemText(err)}${extra && !problemText(err).includes(extra) ? ` (${extra})` : ""}`);
          summary.focus();
        }
        announce(fieldCount ? `The server refused ${fieldCount} field${fieldCount > 1 ? "s" : ""}` : "The task was not completed");
      }
    });
    formArea.replaceChildren(
      ...(blocked ? [h("p", { class: "note" }, "Claim this task to work on it.")] : []),
      element);
  }

  // Conditional requests: an unchanged task or instance costs a 304 and no re-render.
  let taskTag = null;
  let instanceTag = null;
  let current = null;

  async function refresh() {
    const answer = await api(`tasks/${taskId}`, { etag: taskTag });
    if (!answer.notModified) {
      taskTag = answer.etag;
      current = answer.data;
    }
    const detail = current;
    const task = detail.task;
    const snapshot = JSON.stringify(detail);
    if (snapshot !== last) {
      if (last) {
        const before = JSON.parse(last).task;
        if (before.claimed_by !== task.claimed_by) announce(task.claimed_by ? `Claimed by ${task.claimed_by}` : "Released to the group");
        else if (before.status !== task.status) announce(`Task ${task.status.toLowerCase()}`);
        else announce("Task updated");
      }
      last = snapshot;
      title.textContent = task.title;
      document.title = `${task.title} · Task inbox`;
      description.textContent = task.description || "";
      description.hidden = !task.description;
      header.replaceChildren(describeTask(task));
      renderActions(task);
      renderForm(detail);
      comments.replaceChildren(commentList(detail.comments));
      trail.replaceChildren(trailTable(detail.assignments));
    }
    try {
      const got = await api(`instances/${task.instance_id}`, { etag: instanceTag });
      if (got.notModified) return;
      instanceTag = got.etag;
      const instance = got.data;
      const shot = JSON.stringify(instance);
      if (shot !== lastInstance) {
        if (lastInstance && ENDED.has(instance.instance.status) && !ENDED.has(JSON.parse(lastInstance).instance.status)) {
          announce(`The workflow is ${instance.instance.status.toLowerCase()}`);
        }
        lastInstance = shot;
        const chart = await flowchart(instance.instance);
        instanceArea.replaceChildren(...(chart ? [chart] : []), diagram(instance, await declaredSteps(instance.instance)), h("p", {}, h("a", { href: `#/instances/${task.instance_id}` }, "Open the instance")));
      }
    } catch (err) {
      instanceArea.replaceChildren(h("p", { class: "empty" }, `The instance cannot be shown: ${problemText(err)}`));
    }
  }

  const commentBody = h("textarea", { id: "comment-body", name: "body", rows: 3 });
  const commentError = alertBox("comment-error");
  const commentForm = h("form", { id: "comment-form", novalidate: true },
    commentError,
    h("div", { class: "field" }, h("label", { for: "comment-body" }, "Add a comment"), commentBody),
    h("button", { type: "submit" }, "Post comment"));
  commentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    showAlert(commentError, "");
    if (!commentBody.value.trim()) {
      showAlert(commentError, "Write a comment first.");
      commentBody.focus();
      return;
    }
    try {
      await api(`tasks/${taskId}/comments`, { method: "POST", body: { body: commentBody.value } });
      commentBody.value = "";
      announce("Comment posted");
      await refresh();
    } catch (err) {
      showAlert(commentError, problemText(err));
    }
  });

  show("Task",
    h("p", {}, h("a", { href: "#/" }, "Back to my inbox")),
    title,
    error,
    h("div", { class: "columns" },
      h("div", { class: "column" },
        header, description, actions,
        h("section", { "aria-labelledby": "form-heading" }, h("h2", { id: "form-heading" }, "Form"), formArea),
        h("section", { "aria-labelledby": "comments-heading" }, h("h2", { id: "comments-heading" }, "Comments"), comments, commentForm),
        h("section", { "aria-labelledby": "trail-heading" }, h("h2", { id: "trail-heading" }, "Assignment trail"), trail)),
      h("div", { class: "column" },
        h("section", { "aria-labelledby": "instance-heading" }, h("h2", { id: "instance-heading" }, "Workflow instance"), instanceArea))));
  try {
    await refresh();
  } catch (err) {
    showAlert(error, problemText(err));
    return;
  }
  title.focus();
  poll(refresh);
}

async function instanceView(instanceId) {
  const area = h("div", { id: "instance" });
  const title = h("h1", {}, "Workflow instance");
  let last = null;
  let tag = null;
  async function refresh() {
    const answer = await api(`instances/${instanceId}`, { etag: tag });
    if (answer.notModified) return;
    tag = answer.etag;
    const data = answer.data;
    const shot = JSON.stringify(data);
    if (shot === last) return;
    if (last) announce(`Instance ${data.instance.status.toLowerCase()}`);
    last = shot;
    title.textContent = `${data.instance.workflow_name} ${data.instance.workflow_version}`;
    const open = data.tasks.map((t) => h("li", {}, h("a", { href: `#/tasks/${t.id}` }, t.title), ` (${t.status.toLowerCase()})`));
    const chart = await flowchart(data.instance);
    area.replaceChildren(...(chart ? [chart] : []), diagram(data, await declaredSteps(data.instance)), h("h2", {}, "Tasks"), open.length ? h("ul", {}, open) : h("p", { class: "empty" }, "No tasks."));
  }
  show("Workflow instance", h("p", {}, h("a", { href: "#/" }, "Back to my inbox")), title, area);
  try {
    await refresh();
  } catch (err) {
    area.replaceChildren(h("p", { role: "alert" }, problemText(err)));
    return;
  }
  poll(refresh);
}

// -- routing -------------------------------------------------------------------------------

async function route() {
  stopPolling();
  if (!me) return signInView();
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
window.addEventListener("hashchange", route);
loadSession().then(route, (err) => {
  show("Error", h("h1", {}, "The inbox cannot start"), h("p", { role: "alert" }, problemText(err)));
});
