// Guards and their alerts (DESIGN.md, "Guards and alerts"), read only: /v1/alerts, /v1/guards
// and /v1/webhooks/dead with the read token. Writing a guard or sending a dead webhook again
// takes the admin token, which the dashboard never holds: it says how instead.

import { get } from "./api.js";
import { ago, cell, count, duration, h, ident, link, path, percent, query, table, time } from "./dom.js";

const SHOWN = 100; // alerts per read: more firing at once is an incident, not a list to page
const STOP_GIVE_UP_MS = 600_000; // tracker/alerts/stopper.py GIVE_UP: an outcome comes by then

export async function guardsByName() {
  const page = await get("/v1/guards");
  return new Map(page.items.map((g) => [g.name, g]));
}

export function firingAlerts() {
  return get("/v1/alerts" + query({ state: "firing", limit: SHOWN }));
}

export function alertsOf(operationId) {
  return get("/v1/alerts" + query({ operation_id: operationId, limit: SHOWN }));
}

export function deadLetters() {
  return get("/v1/webhooks/dead" + query({ limit: 50 }));
}

// A guard's condition is the one key of its `when` (GuardDocument) that names one.
const CONDITIONS = ["failure_rate_above", "failed_above", "stuck_above", "new_error_code", "silent_for"];

function kindOf(when) {
  return CONDITIONS.find((name) => name in (when ?? {})) ?? null;
}

export function condition(when) {
  switch (kindOf(when)) {
    case "failure_rate_above":
      return `failure rate above ${percent(when.failure_rate_above, 1)} once ${count(when.min_results)} results are in`;
    case "failed_above": return `more than ${count(when.failed_above)} failed`;
    case "stuck_above": return `more than ${count(when.stuck_above)} stuck for ${duration(when.stuck_for)}`;
    case "new_error_code": return "a new error code";
    case "silent_for": return `silent for ${duration(when.silent_for)} while devices are busy`;
    default: return JSON.stringify(when);
  }
}

// A reading as its condition measures it: a share as a percentage, silence as a duration (the
// seconds on hover), the rest as counts. A deleted guard's alerts keep plain numbers.
function measure(kind, n) {
  if (kind === "failure_rate_above") return percent(n, 1);
  if (kind === "silent_for") return h("span", { title: `${count(n)} s` }, duration(n));
  return count(n);
}

function reading(alert, kind) {
  const value = measure(kind, alert.value);
  if (!alert.new_codes?.length) return value;
  return [value, " ", alert.new_codes.map((code) => [h("code", {}, code), " "])];
}

// What became of the StopBatchTask a firing asked for. Its outcome is not in /v1/stream, so a
// stop still owed is marked `pending` (dashboard.js reads the page again while one is).
const STOPPED = {
  stopping: ["task stopping", "IoTDA took the StopBatchTask"],
  refused: ["stop refused", "IoTDA refused the StopBatchTask"],
  unconfirmed: ["not stopped", "IoTDA's own counters of the task did not show the condition"],
  failed: ["stop failed", "no answer from IoTDA in time, or no IoTDA credentials on the server"],
};

function stopOf(alert, guard) {
  if (alert.stop) {
    const [label, why] = STOPPED[alert.stop.outcome] ?? [alert.stop.outcome, ""];
    const detail = alert.stop.detail ?? "";
    return [h("span", { class: `flag stop ${alert.stop.outcome}`, "data-stop": alert.stop.outcome,
      title: `${why} · ${new Date(alert.stop.at).toISOString()} (UTC)` }, label),
    detail ? h("span", { class: "muted wrap detail", title: detail }, detail.length > 80 ? detail.slice(0, 80) + "…" : detail) : null];
  }
  if (stopOwed(alert, guard)) {
    return h("span", { class: "muted", "data-stop": "pending", title: "StopBatchTask asked for; its outcome not recorded yet" }, "stop pending…");
  }
  return h("span", { class: "muted" }, "–");
}

function stopOwed(alert, guard) {
  return alert.state === "firing" && alert.platform === "iotda" && guard?.stop_task === true &&
    new Date(guard.updated_at) <= new Date(alert.fired_at) && // the guard asked for it when it fired
    Date.now() - new Date(alert.fired_at).getTime() < STOP_GIVE_UP_MS;
}

function rolloutLink(alert) {
  return link(path("operations", alert.operation_id) + query({ track: alert.track }), ident(alert.operation_id));
}

function guardName(alert, guard) {
  return h("span", { title: guard ? condition(guard.when) : "this guard has been deleted" }, alert.guard);
}

// On the overview, what the guard watches for under its name: the value reads by it.
function guardWithCondition(alert, guard) {
  return [h("strong", {}, alert.guard),
    h("span", { class: "muted detail" }, guard ? condition(guard.when) : "(a guard since deleted)")];
}

function alertAttrs(alert) {
  return { "data-alert": alert.id, "data-guard": alert.guard, "data-operation": alert.operation_id,
    "data-track": alert.track, "data-state": alert.state, "data-value": alert.value, "data-threshold": alert.threshold,
    class: alert.state === "firing" ? "firing" : null };
}

function plural(n, one, many) {
  return `${count(n)} ${n === 1 ? one : many}`;
}

// A page's items counted, saying so when the list goes on past it.
function tally(page, one, many) {
  return page.next_cursor ? `More than ${count(page.items.length)} ${many}` : plural(page.items.length, one, many);
}

// The overview's panel: every alert firing now, the latest first.
export function firingView(page, guards) {
  const alerts = page.items;
  if (!alerts.length) {
    const watching = guards.size ? ` ${plural(guards.size, "guard is", "guards are")} watching.` : "";
    return [h("p", { class: "muted empty", "data-firing": "0" }, `No alert is firing.${watching}`)];
  }
  const rows = alerts.map((a) => {
    const guard = guards.get(a.guard);
    const kind = kindOf(guard?.when);
    return h("tr", alertAttrs(a),
      cell(guardWithCondition(a, guard)), cell(rolloutLink(a)), cell(a.track),
      cell(reading(a, kind), true), cell(measure(kind, a.threshold), true),
      cell(ago(a.fired_at)), cell(stopOf(a, guard)));
  });
  return [
    h("p", { class: "warning", "data-firing": alerts.length },
      h("strong", {}, `${tally(page, "alert", "alerts")} firing${page.next_cursor ? ` (the latest ${SHOWN} shown)` : ""}. `),
      "A guard's condition holds on each rollout below."),
    table("Alerts firing, the latest first", ["Guard", "Rollout", "Track", "Value#", "Fires above#", "Fired", "Stop"], rows),
  ];
}

// One rollout's alerts on its track: firing first, then resolved, each the latest fired first.
export function rolloutAlertsView(page, guards, track) {
  const mine = page.items.filter((a) => a.track === track);
  const firing = mine.filter((a) => a.state === "firing");
  const ordered = [...firing, ...mine.filter((a) => a.state !== "firing")];
  if (!ordered.length) {
    return [h("p", { class: "muted empty", "data-firing": "0" },
      guards.size ? "No guard has alerted on this rollout." : "No guards defined: nothing watches this rollout.")];
  }
  const rows = ordered.map((a) => {
    const guard = guards.get(a.guard);
    const kind = kindOf(guard?.when);
    return h("tr", alertAttrs(a),
      cell(h("span", { class: `flag ${a.state}` }, a.state)),
      cell(guardName(a, guard)), cell(guard ? h("span", { class: "wrap long" }, condition(guard.when)) : h("span", { class: "muted" }, "(deleted)")),
      cell(reading(a, kind), true), cell(measure(kind, a.threshold), true),
      cell(time(a.fired_at)), cell(time(a.resolved_at)), cell(stopOf(a, guard)));
  });
  return [
    firing.length
      ? h("p", { class: "warning", "data-firing": firing.length },
        h("strong", {}, `${plural(firing.length, "alert", "alerts")} firing on this rollout. `),
        "Each guard's condition holds now.")
      : h("p", { class: "muted", "data-firing": "0" }, "No alert is firing: those below have resolved."),
    table("This rollout's alerts, firing first", ["State", "Guard", "Condition", "Value#", "Fires above#", "Fired", "Resolved", "Stop"], rows),
    h("p", { class: "muted" }, "Value: the condition's reading when the alert last fired or resolved."),
  ];
}

// Rollouts with an alert firing, as "operation_id track" → the guards alerting.
export function firingByRollout(page) {
  const found = new Map();
  for (const a of page.items) {
    const key = `${a.operation_id}\u0000${a.track}`;
    found.set(key, [...(found.get(key) ?? []), a.guard]);
  }
  return found;
}

export function firingFlag(firing, op) {
  const guards = firing.get(`${op.operation_id}\u0000${op.track}`);
  if (!guards) return null;
  return h("span", { class: "flag firing", "data-firing": guards.length, title: `firing: ${guards.join(", ")}` },
    plural(guards.length, "alert", "alerts"));
}

export function guardsView(guards) {
  if (!guards.size) {
    return [h("p", { class: "muted empty", "data-guards": "0" }, "No guards defined. An operator creates one with ",
      h("code", {}, "PUT /v1/guards/{name}"), " and the admin token, or ", h("code", {}, "tracker guards put NAME --file FILE"), ".")];
  }
  return [table("Guards, by name", ["Name", "Scope", "Condition", "Webhook", "Stop task", "Updated"],
    [...guards.values()].map((g) => h("tr", { "data-guard": g.name },
      cell(h("strong", {}, g.name)), cell(scopeOf(g.scope)), cell(h("span", { class: "wrap long" }, condition(g.when))),
      cell(g.webhook ? h("code", { class: "url" }, g.webhook.url) : h("span", { class: "muted" }, "–")),
      cell(g.stop_task ? "yes" : h("span", { class: "muted" }, "no")),
      cell(time(g.updated_at)))))];
}

// A scope's fields from the broadest to the narrowest, however the document orders them.
const SCOPE = ["app_id", "platform", "track", "operation_id"];

function scopeOf(scope) {
  const rank = (name) => (SCOPE.includes(name) ? SCOPE.indexOf(name) : SCOPE.length);
  const given = Object.entries(scope ?? {}).sort(([a], [b]) => rank(a) - rank(b));
  if (!given.length) return h("span", { class: "muted" }, "every rollout");
  return given.map(([name, value], i) => [i ? " · " : "", h("span", { class: "muted" }, name.replace("_id", ""), " "), h("code", {}, ident(value))]);
}

// Webhooks given up on: only when there are some; how to send one again, which needs the
// admin token (the dashboard has only the read token).
export function deadView(page) {
  return [
    h("p", { class: "warning" }, h("strong", {}, `${tally(page, "webhook delivery", "webhook deliveries")} given up on${page.next_cursor ? " (the oldest shown)" : ""}. `),
      "An operator sends one again with ", h("code", {}, "POST /v1/webhooks/dead/{id}/retry"), " and the admin token, or ",
      h("code", {}, "tracker guards retry ID"), "."),
    table("Webhook deliveries given up on, oldest first", ["Id", "Guard", "URL", "Attempts#", "Last error", "Given up"],
      page.items.map((d) => h("tr", { "data-dead": d.id },
        cell(h("code", {}, ident(d.id))), cell(d.guard), cell(h("code", { class: "url" }, d.url)), cell(count(d.attempts), true),
        cell(h("span", { class: "wrap long" }, d.last_error ?? "–")), cell(time(d.died_at))))),
  ];
}
