// A workflow instance: its flowchart (drawn from the API's Mermaid text), the steps it ran
// with their states, the declared steps not reached yet; and the instance's own view.

import { api } from "./api.js";
import { drawFlowchart } from "./diagram.js";
import { h, when } from "./dom.js";
import { ENDED, announce, facts, isPending, poll, problemText, show } from "./page.js";

const STATE_WORDS = {
  PENDING: "pending", RUNNING: "running", WAITING: "waiting for a person", SUCCEEDED: "done",
  COMPLETED: "done", FAILED: "failed", SKIPPED: "skipped", CANCELED: "canceled", EXPIRED: "expired",
  TIMED_OUT: "timed out", COMPENSATED: "compensated",
};

const definitions = new Map();

/** The steps a workflow version declares ([{name, type}]), fetched once; [] when unknown. */
export async function declaredSteps(instance) {
  const key = `${instance.workflow_name}@${instance.workflow_version}`;
  if (!definitions.has(key)) {
    const query = `definitions/${encodeURIComponent(instance.workflow_name)}?version=${encodeURIComponent(instance.workflow_version)}`;
    definitions.set(key, api(query).then(({ data }) => (data.definition && data.definition.steps) || [], () => []));
  }
  return definitions.get(key);
}

/** The instance's flowchart (from its Mermaid text), or null when the API has none for it. */
export async function flowchart(instance) {
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
export function diagram(detail, declared = []) {
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

export async function instanceView(instanceId) {
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
