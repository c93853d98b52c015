// A task: its facts, claim and release, its form (from its JSON schema, with each field's
// error next to it), comments, assignment trail, and the instance it belongs to.

import { ApiError, api } from "./api.js";
import { h, when } from "./dom.js";
import { schemaForm } from "./form.js";
import { declaredSteps, diagram, flowchart } from "./instance.js";
import { ENDED, alertBox, announce, facts, isPending, poll, problemText, session, show, showAlert } from "./page.js";

function describeTask(task) {
  return facts([
    ["Status", task.status.toLowerCase()],
    ["Assigned to", task.assignee_id || "—"],
    ...(task.on_behalf_of ? [["On behalf of", task.on_behalf_of]] : []),
    ["Group", task.assignee_group || "—"],
    ...(task.quorum ? [["Approvals needed", String(task.quorum)], ["Voters", (task.voters || []).map((v) => (task.voters_on_behalf || {})[v] ? `${v} (on behalf of ${task.voters_on_behalf[v]})` : v).join(", ") || `group ${task.assignee_group}`]] : [["Claimed by", task.claimed_by || "—"]]),
    ["Priority", String(task.priority)],
    ["Follow up", when(task.follow_up_at)],
    ["Due", when(task.due_at)],
    ["Created", when(task.created_at)],
  ]);
}

const VOTE_WORDS = { approved: "approved", rejected: "rejected", pending: "not voted yet", excluded: "may not vote" };

function voteList(votes) {
  if (!votes.length) return h("p", { class: "empty" }, "No votes yet.");
  return h("ul", { class: "votes" }, votes.map((v) => h("li", { "data-voter": v.voter },
    h("strong", {}, v.voter), `: ${VOTE_WORDS[v.state] || String(v.state)}`,
    v.state === "excluded" && v.reason ? ` (${v.reason})` : "",
    v.on_behalf_of ? ` (on behalf of ${v.on_behalf_of})` : "",
    v.voted_at ? h("span", { class: "meta" }, " · ", h("time", { datetime: v.voted_at }, when(v.voted_at))) : "",
    v.comment ? h("span", {}, ` — ${v.comment}`) : "")));
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

export async function taskView(taskId) {
  const error = alertBox("task-error");
  const header = h("div", { id: "task-facts" });
  const actions = h("div", { id: "task-actions", class: "actions" });
  const formArea = h("div", { id: "form-area" });
  const comments = h("div", { id: "comments" });
  const votes = h("section", { id: "votes", "aria-labelledby": "votes-heading", hidden: true });
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
    if (isPending(task) && task.assignee_group && session.me.groups.includes(task.assignee_group)) {
      if (!task.claimed_by) buttons.push(h("button", { type: "button", id: "claim", onclick: () => act("claim", "You claimed this task") }, "Claim"));
      else if (task.claimed_by === session.me.user) buttons.push(h("button", { type: "button", id: "release", onclick: () => act("release", "You released this task") }, "Release"));
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
    // A quorum task takes votes (each eligible user once), not a completion.
    const voting = Boolean(task.quorum);
    const blocked = voting ? !detail.may_vote : task.require_claim && task.claimed_by !== session.me.user;
    const key = `PENDING:${voting}:${blocked}:${JSON.stringify((detail.votes || []).filter((v) => v.voter === session.me.user))}`;
    if (formFor === key) return;
    formFor = key;
    const form = schemaForm(detail.form_schema, "f");
    const summary = h("div", { id: "form-errors", class: "alert", role: "alert", tabindex: "-1", hidden: true });
    const submit = voting
      ? h("button", { type: "submit", id: "vote" }, "Cast my vote")
      : h("button", { type: "submit", id: "complete" }, "Complete task");
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
        await api(`tasks/${taskId}/${voting ? "votes" : "complete"}`, { method: "POST", body: { data } });
        announce(voting ? "Vote counted" : "Task completed");
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
        announce(fieldCount ? `The server refused ${fieldCount} field${fieldCount > 1 ? "s" : ""}` : voting ? "The vote was not counted" : "The task was not completed");
      }
    });
    const mine = (detail.votes || []).find((v) => v.voter === session.me.user);
    const voted = mine && (mine.state === "approved" || mine.state === "rejected");
    const note = !voting ? "Claim this task to work on it."
      : voted ? `You voted already (${mine.state}).`
      : "You may not vote on this task: you are not one of its voters, or separation of duties keeps you out.";
    formArea.replaceChildren(
      ...(blocked ? [h("p", { class: "note", id: "form-note" }, note)] : []),
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
      votes.hidden = !task.quorum;
      votes.replaceChildren(h("h2", { id: "votes-heading" }, "Votes"), voteList(detail.votes || []));
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
        votes,
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
  // The heading, now with the task's title, takes the focus again only if the user has not
  // moved on meanwhile (show() focused it before the task arrived): a slow answer must not
  // pull the focus out of a field the user is already in.
  const view = document.getElementById("main");
  if (document.activeElement === title || !view.contains(document.activeElement)) title.focus();
  poll(refresh);
}
