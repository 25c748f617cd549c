// The read API, as the dashboard calls it: same origin, the session cookie, JSON documents.

export class Unauthorized extends Error {}

export class Failed extends Error {
  constructor(status, document) {
    super(document?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = document?.error?.code;
  }
}

export async function get(path) {
  const response = await fetch(path, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 401) throw new Unauthorized();
  const document = await response.json().catch(() => null);
  if (!response.ok) throw new Failed(response.status, document);
  return document;
}

export async function text(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Failed(response.status, await response.json().catch(() => null));
  return response.text();
}

export function session() {
  return get("/v1/session");
}

export async function signIn(token) {
  const response = await fetch("/v1/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.status === 401) throw new Unauthorized();
  if (!response.ok) throw new Failed(response.status, await response.json().catch(() => null));
  return response.json();
}

export async function signOut() {
  await fetch("/v1/session", { method: "DELETE", credentials: "same-origin" });
}
