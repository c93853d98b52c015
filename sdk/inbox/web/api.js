// The inbox API seen from the page: JSON in and out, the session's CSRF token on every
// unsafe request, conditional GETs (ETag) for live updates, problem details as ApiError.

let csrfToken = null;

/** Remember the session's CSRF token (from the sign-in answer or GET api/session). */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

function csrfFromCookie() {
  const found = document.cookie.match(/(?:^|;\s*)dwf_csrf=([^;]*)/);
  return found ? decodeURIComponent(found[1]) : null;
}

/** A refusal from the API: its HTTP status and its RFC 9457 problem details. */
export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  /** Each failing field: [{field, message, type}]. */
  get errors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

/**
 * Call the API (paths are relative to the inbox, e.g. "inbox", "tasks/ID/claim").
 * Returns {data, etag}, or {notModified: true} when `etag` still matches.
 */
export async function api(path, { method = "GET", body, etag, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") {
    const token = csrfToken || csrfFromCookie();
    if (token) headers["X-CSRF-Token"] = token;
  }
  if (etag) headers["If-None-Match"] = etag;
  const response = await fetch(`api/${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
    signal,
  });
  if (response.status === 304) return { notModified: true, etag };
  const type = response.headers.get("content-type") || "";
  const data = response.status !== 204 && type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, data || { title: response.statusText });
  return { data, etag: response.headers.get("etag") };
}
