// A task's form, rendered from its JSON schema (as pydantic writes it), checked in the page
// before it is sent, and showing each field's error next to it: the page's own checks and the
// server's problem details alike. Every input has a label; hints and errors are tied to it
// with aria-describedby, and an invalid field is marked aria-invalid.

import { h } from "./dom.js";

const LONG_TEXT = new Set(["comment", "comments", "description", "reason", "notes", "note", "body"]);

function resolve(schema, root) {
  let node = schema || {};
  const seen = new Set();
  while (node.$ref && !seen.has(node.$ref)) {
    seen.add(node.$ref);
    const name = node.$ref.replace(/^#\/(\$defs|definitions)\//, "");
    node = { ...((root.$defs || root.definitions || {})[name] || {}), ...node, $ref: undefined };
  }
  if (node.allOf && node.allOf.length === 1) node = { ...resolve(node.allOf[0], root), ...node, allOf: undefined };
  return node;
}

/** The field's schema without its null branch, and whether null is allowed. */
function unwrap(schema, root) {
  const node = resolve(schema, root);
  const branches = node.anyOf || node.oneOf;
  if (Array.isArray(branches)) {
    const others = branches.filter((b) => resolve(b, root).type !== "null");
    if (others.length === 1) {
      const inner = resolve(others[0], root);
      return { field: { ...inner, title: node.title || inner.title, description: node.description || inner.description, default: node.default }, nullable: others.length < branches.length };
    }
  }
  return { field: node, nullable: node.type === "null" };
}

function kindOf(field, name) {
  if (Array.isArray(field.enum)) return "enum";
  if (field.type === "boolean") return "boolean";
  if (field.type === "integer" || field.type === "number") return field.type;
  if (field.type === "string") {
    if (field.format === "date") return "date";
    if (field.format === "email") return "email";
    if (LONG_TEXT.has(name) || (field.maxLength || 0) > 200) return "textarea";
    return "string";
  }
  return "json";
}

function humanName(name, field) {
  return field.title || name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
}

function hintFor(field, kind) {
  const parts = [];
  if (field.description) parts.push(field.description);
  if (field.minimum !== undefined) parts.push(`at least ${field.minimum}`);
  if (field.exclusiveMinimum !== undefined) parts.push(`more than ${field.exclusiveMinimum}`);
  if (field.maximum !== undefined) parts.push(`at most ${field.maximum}`);
  if (field.exclusiveMaximum !== undefined) parts.push(`less than ${field.exclusiveMaximum}`);
  if (field.minLength) parts.push(`at least ${field.minLength} characters`);
  if (field.maxLength) parts.push(`at most ${field.maxLength} characters`);
  if (kind === "integer") parts.push("a whole number");
  if (kind === "json") parts.push("JSON");
  return parts.join("; ");
}

/**
 * Build the form's fields from `schema` (ids start with `prefix`). Returns the element and
 * the functions that read it, check it and show errors.
 */
export function schemaForm(schema, prefix = "field") {
  const root = schema || {};
  const required = new Set(root.required || []);
  const fields = [];
  const container = h("div", { class: "fields" });
  for (const [name, raw] of Object.entries(root.properties || {})) {
    const { field, nullable } = unwrap(raw, root);
    const kind = kindOf(field, name);
    const id = `${prefix}-${name}`;
    const hint = hintFor(field, kind);
    const isRequired = required.has(name) && kind !== "boolean";
    const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(" ");
    let input;
    if (kind === "enum") {
      input = h("select", { id, name });
      if (!required.has(name) || field.default === undefined) input.append(h("option", { value: "" }, "— choose —"));
      for (const value of field.enum) input.append(h("option", { value: JSON.stringify(value) }, String(value)));
      if (field.default !== undefined && field.default !== null) input.value = JSON.stringify(field.default);
    } else if (kind === "boolean") {
      input = h("input", { id, name, type: "checkbox" });
      input.checked = field.default === true;
    } else if (kind === "textarea" || kind === "json") {
      input = h("textarea", { id, name, rows: kind === "json" ? 4 : 3 });
      if (field.default !== undefined && field.default !== null) {
        input.value = kind === "json" ? JSON.stringify(field.default) : String(field.default);
      }
    } else {
      const type = { integer: "number", number: "number", date: "date", email: "email" }[kind] || "text";
      input = h("input", { id, name, type });
      if (kind === "number") input.setAttribute("step", "any");
      if (kind === "integer") input.setAttribute("step", "1");
      if (field.default !== undefined && field.default !== null) input.value = String(field.default);
    }
    input.setAttribute("aria-describedby", describedBy);
    if (isRequired) input.setAttribute("aria-required", "true");
    const label = h("label", { for: id }, humanName(name, field), isRequired ? h("span", { class: "required" }, " (required)") : null);
    const error = h("p", { class: "field-error", id: `${id}-error`, hidden: true });
    const hintNode = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
    const wrapper = kind === "boolean"
      ? h("div", { class: "field field-checkbox", "data-field": name }, input, label, hintNode, error)
      : h("div", { class: "field", "data-field": name }, label, hintNode, input, error);
    container.append(wrapper);
    fields.push({ name, field, kind, nullable, required: required.has(name), input, error });
  }

  function read(entry) {
    const { input, kind, field } = entry;
    if (kind === "boolean") return { value: input.checked };
    const text = input.value;
    if (text.trim() === "") return { empty: true };
    if (kind === "enum") return { value: JSON.parse(text) };
    if (kind === "integer" || kind === "number") {
      const value = Number(text);
      if (!Number.isFinite(value)) return { problem: "Enter a number." };
      if (kind === "integer" && !Number.isInteger(value)) return { problem: "Enter a whole number." };
      return { value };
    }
    if (kind === "json") {
      try {
        return { value: JSON.parse(text) };
      } catch {
        return { problem: "Enter valid JSON." };
      }
    }
    return { value: field.type === "string" ? text : text };
  }

  function check(entry, got) {
    const { field } = entry;
    if (got.problem) return got.problem;
    if (got.empty) return entry.required && field.default === undefined ? "Fill in this field." : null;
    const value = got.value;
    if (typeof value === "number") {
      if (field.minimum !== undefined && value < field.minimum) return `Enter a number of at least ${field.minimum}.`;
      if (field.maximum !== undefined && value > field.maximum) return `Enter a number of at most ${field.maximum}.`;
      if (field.exclusiveMinimum !== undefined && value <= field.exclusiveMinimum) return `Enter a number above ${field.exclusiveMinimum}.`;
      if (field.exclusiveMaximum !== undefined && value >= field.exclusiveMaximum) return `Enter a number below ${field.exclusiveMaximum}.`;
    }
    if (typeof value === "string") {
      if (field.minLength && value.length < field.minLength) return `Use at least ${field.minLength} characters.`;
      if (field.maxLength && value.length > field.maxLength) return `Use at most ${field.maxLength} characters.`;
      if (field.pattern && !new RegExp(field.pattern, "u").test(value)) return "This does not have the expected format.";
    }
    return null;
  }

  function setError(entry, message) {
    entry.error.textContent = message || "";
    entry.error.hidden = !message;
    if (message) entry.input.setAttribute("aria-invalid", "true");
    else entry.input.removeAttribute("aria-invalid");
  }

  return {
    element: container,
    /** Read and check every field: {data, errors: [{field, message}]}. */
    collect() {
      const data = {};
      const errors = [];
      for (const entry of fields) {
        const got = read(entry);
        const message = check(entry, got);
        if (message) errors.push({ field: entry.name, message });
        else if (!got.empty) data[entry.name] = got.value;
        else if (entry.nullable) data[entry.name] = null;
      }
      return { data, errors };
    },
    /** Show errors next to their fields; returns the ones no field matches. */
    showErrors(errors) {
      const byField = new Map(fields.map((f) => [f.name, f]));
      const unmatched = [];
      for (const entry of fields) setError(entry, null);
      for (const err of errors) {
        const path = String(err.field || "").replace(/^body\./, "").replace(/^data\./, "");
        const entry = byField.get(path.split(".")[0]);
        if (entry) setError(entry, entry.error.hidden ? err.message : `${entry.error.textContent} ${err.message}`);
        else unmatched.push(err);
      }
      const first = fields.find((f) => !f.error.hidden);
      if (first) first.input.focus();
      return unmatched;
    },
    fieldLabel(name) {
      const entry = fields.find((f) => f.name === name);
      return entry ? humanName(entry.name, entry.field) : name;
    },
    fieldId(name) {
      const entry = fields.find((f) => f.name === name);
      return entry ? entry.input.id : null;
    },
    setDisabled(disabled) {
      for (const entry of fields) entry.input.disabled = disabled;
    },
  };
}
