// The instance's diagram: the Mermaid flowchart the API gives (GET api/instances/ID/diagram),
// drawn here as SVG. Only the subset the SDK writes is read: "flowchart TD", nodes with their
// shape and quoted label, edges with an optional quoted label, and "class NODE STATUS" lines.
// Layered layout (longest path from the start, back edges drawn around). No library, no
// markup parsing: every element is built with DOM calls and every label set as text.

const SVG = "http://www.w3.org/2000/svg";
const SHAPES = [
  ["((\"", "\"))", "terminal"], ["[[\"", "\"]]", "subworkflow"], ["[/\"", "\"/]", "human"],
  ["([\"", "\"])", "timer"], ["{{\"", "\"}}", "parallel"], ["{\"", "\"}", "exclusive"],
  [">\"", "\"]", "event"], ["[\"", "\"]", "machine"],
];
const WORDS = {
  succeeded: "done", running: "running", waiting: "waiting for a person", pending: "pending",
  scheduled: "scheduled", failed: "failed", skipped: "skipped", canceled: "canceled",
};
const NODE_H = 44;
const GAP_X = 36;
const GAP_Y = 58;

function unquote(text) {
  return text.replace(/#quot;/g, "\"");
}

/** Nodes, edges and statuses of the flowchart text (lines it does not know are skipped). */
export function parseFlowchart(source) {
  const nodes = new Map();
  const edges = [];
  const node = (id) => {
    if (!nodes.has(id)) nodes.set(id, { id, label: id, shape: "machine", status: null, order: nodes.size });
    return nodes.get(id);
  };
  for (const raw of String(source).split("\n")) {
    const line = raw.trim();
    let found = line.match(/^(\w+)\s*-->\s*(?:\|"(.*)"\|\s*)?(\w+)$/);
    if (found) {
      node(found[1]);
      node(found[3]);
      edges.push({ from: found[1], to: found[3], label: found[2] ? unquote(found[2]) : null });
      continue;
    }
    found = line.match(/^class\s+(\w+)\s+(\w+)$/);
    if (found) {
      node(found[1]).status = found[2];
      continue;
    }
    found = line.match(/^(\w+)(.+)$/);
    if (!found || line.startsWith("flowchart") || line.startsWith("classDef")) continue;
    for (const [open, close, shape] of SHAPES) {
      const rest = found[2];
      if (rest.startsWith(open) && rest.endsWith(close) && rest.length >= open.length + close.length) {
        const entry = node(found[1]);
        entry.label = unquote(rest.slice(open.length, rest.length - close.length));
        entry.shape = entry.id === "start_" || entry.id === "end_" ? "terminal" : shape;
        break;
      }
    }
  }
  return { nodes, edges };
}

/** Rank each node by its longest path from the start; edges closing a loop are marked back. */
function layout(nodes, edges) {
  const out = new Map([...nodes.keys()].map((id) => [id, []]));
  edges.forEach((e) => out.get(e.from).push(e));
  const state = new Map();
  const visit = (id) => {
    state.set(id, 1);
    for (const edge of out.get(id)) {
      const seen = state.get(edge.to);
      if (seen === 1) edge.back = true;
      else if (!seen) visit(edge.to);
    }
    state.set(id, 2);
  };
  const roots = [...nodes.keys()].sort((a, b) => (a === "start_" ? -1 : b === "start_" ? 1 : 0));
  roots.forEach((id) => { if (!state.get(id)) visit(id); });
  const rank = new Map([...nodes.keys()].map((id) => [id, 0]));
  for (let round = 0; round < nodes.size; round += 1) {
    let changed = false;
    for (const edge of edges) {
      if (!edge.back && rank.get(edge.to) < rank.get(edge.from) + 1) {
        rank.set(edge.to, rank.get(edge.from) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const layers = [];
  for (const entry of [...nodes.values()].sort((a, b) => a.order - b.order)) {
    const r = rank.get(entry.id);
    (layers[r] = layers[r] || []).push(entry);
    entry.width = entry.shape === "terminal" ? 64 : Math.max(120, Math.min(260, entry.label.length * 7 + 36));
  }
  const widths = layers.map((layer) => layer.reduce((sum, n) => sum + n.width, 0) + GAP_X * (layer.length - 1));
  const total = Math.max(...widths, 200);
  layers.forEach((layer, r) => {
    let x = (total - widths[r]) / 2;
    for (const entry of layer) {
      entry.x = x + entry.width / 2;
      entry.y = r * (NODE_H + GAP_Y) + NODE_H / 2;
      x += entry.width + GAP_X;
    }
  });
  return { width: total + 80, height: layers.length * (NODE_H + GAP_Y) };
}

function el(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function outline(entry) {
  const w = entry.width / 2;
  const h = NODE_H / 2;
  const skew = 10;
  switch (entry.shape) {
    case "terminal": return el("ellipse", { rx: w, ry: h * 0.7 });
    case "human": return el("polygon", { points: `${-w + skew},${-h} ${w + skew},${-h} ${w - skew},${h} ${-w - skew},${h}` });
    case "exclusive":
    case "parallel": return el("polygon", { points: `${-w},0 ${-w + 16},${-h} ${w - 16},${-h} ${w},0 ${w - 16},${h} ${-w + 16},${h}` });
    case "event": return el("polygon", { points: `${-w},${-h} ${w},${-h} ${w},${h} ${-w},${h} ${-w + 14},0` });
    case "timer": return el("rect", { x: -w, y: -h, width: entry.width, height: NODE_H, rx: h, ry: h });
    default: return el("rect", { x: -w, y: -h, width: entry.width, height: NODE_H, rx: 6, ry: 6 });
  }
}

/** The SVG drawing of a Mermaid flowchart; `title` names it for assistive technology. */
export function drawFlowchart(source, title) {
  const { nodes, edges } = parseFlowchart(source);
  const size = layout(nodes, edges);
  const svg = el("svg", {
    class: "flowchart", viewBox: `-40 -10 ${size.width} ${size.height + 10}`,
    width: size.width, height: size.height + 10, role: "img",
  });
  svg.append(el("title", {}, title));
  const defs = el("defs");
  const marker = el("marker", { id: "dwf-arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" });
  marker.append(el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow-head" }));
  defs.append(marker);
  svg.append(defs);
  const labelled = new Map();
  for (const edge of edges) {
    const a = nodes.get(edge.from);
    const b = nodes.get(edge.to);
    let d;
    if (edge.back || b.y <= a.y) {
      const side = Math.max(a.x + a.width / 2, b.x + b.width / 2) + 24;
      d = `M ${a.x + a.width / 2} ${a.y} C ${side} ${a.y}, ${side} ${b.y}, ${b.x + b.width / 2} ${b.y}`;
    } else {
      d = `M ${a.x} ${a.y + NODE_H / 2} L ${b.x} ${b.y - NODE_H / 2}`;
    }
    svg.append(el("path", { d, class: "edge", "marker-end": "url(#dwf-arrow)" }));
    if (edge.label) {
      const short = edge.label.length > 30 ? `${edge.label.slice(0, 29)}…` : edge.label;
      // In the gap just below the source (where a long edge crosses no other node yet), one
      // line lower for each labelled edge of the same source, so labels never overlap.
      const k = labelled.get(edge.from) || 0;
      labelled.set(edge.from, k + 1);
      const ty = a.y + NODE_H / 2 + 13 + k * 13;
      const t = b.y > a.y ? Math.min(0.9, (ty - a.y) / (b.y - a.y)) : 0.5;
      const x = a.x + (b.x - a.x) * t + 6;
      const label = el("text", { x, y: a.y + (b.y - a.y) * t + 4, class: "edge-label" }, short);
      label.append(el("title", {}, edge.label));
      svg.append(label);
    }
  }
  for (const entry of nodes.values()) {
    const status = entry.status ? entry.status.toLowerCase() : "none";
    const group = el("g", { class: `node shape-${entry.shape} status-${status}`, transform: `translate(${entry.x} ${entry.y})`, "data-node": entry.label, "data-status": status });
    group.append(outline(entry));
    const label = entry.label.length > 34 ? `${entry.label.slice(0, 33)}…` : entry.label;
    group.append(el("text", { y: entry.status ? -3 : 4, class: "node-label" }, label));
    if (entry.status) group.append(el("text", { y: 13, class: "node-state" }, WORDS[status] || status));
    svg.append(group);
  }
  return svg;
}
