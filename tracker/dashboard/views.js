// The four views. Each builds its frame once (headings, filters), then `reload` reads the API
// documents it shows and redraws only the parts that hold them, so live updates keep focus.

import {
  alertsOf, deadLetters, deadView, firingAlerts, firingByRollout, firingFlag, firingView, guardsByName, guardsView,
  rolloutAlertsView,
} from "./alerts.js";
import { get, text } from "./api.js";
import {
  activityChart, ago, badge, cell, count, disagreement, duration, h, ident, legend, link, path, percent, progressRows,
  query, stateBar, statesOf, table, time, SUBTASK_STATUSES, TRACKS,
} from "./dom.js";

const STUCK_DEFAULT_MINUTES = 60;
const PAGE = 50;

function stuckMinutes(params) {
  const asked = Number(params.get("stuck") ?? localStorage.getItem("stuck-minutes"));
  const minutes = Number.isFinite(asked) && asked > 0 ? asked : STUCK_DEFAULT_MINUTES;
  localStorage.setItem("stuck-minutes", String(minutes));
  return minutes;
}

function section(title, id, ...rest) {
  const body = h("div", { id, class: "section-body" });
  return [h("section", { "aria-labelledby": `${id}-title` }, h("h2", { id: `${id}-title` }, title), ...rest, body), body];
}

function operationHref(op) {
  return path("operations", op.operation_id) + query({ track: op.track });
}

function deviceHref(id) {
  return path("devices", id);
}

function results(op) {
  const success = op.results.SUCCESS ?? 0;
  const fail = op.results.FAIL ?? 0;
  return { success, fail, rate: percent(success, success + fail) };
}

// An IoTDA rollout's own counters, in a line under its bar: what the platform says, and a
// warning when it differs from the devices read.
function platformCounts(op) {
  const rows = progressRows(op);
  if (!rows) return null;
  const said = rows.filter(([, theirs]) => theirs).map(([name, theirs]) => `${name} ${count(theirs)}`);
  return h("div", { class: "platform-counts", "data-progress": "" },
    h("span", { class: "muted" }, `IoTDA says: ${said.join(" · ") || "nothing yet"}`), " ", disagreement(op));
}

// "/": the alerts firing, every rollout (newest activity first), batch tasks, the guards, and
// the webhooks given up on (when there are some).
export function overview(main, params) {
  const minutes = stuckMinutes(params);
  const filters = h("form", { class: "filters", method: "get", action: "/", role: "search" },
    h("label", {}, "App ", h("input", { name: "app_id", value: params.get("app_id") ?? "", size: 14 })),
    h("label", {}, "Track ",
      h("select", { name: "track" },
        ["", ...TRACKS].map((t) =>
          h("option", { value: t, selected: (params.get("track") ?? "") === t }, t || "both")))),
    h("label", {}, "Stuck after ",
      h("input", { name: "stuck", type: "number", min: 1, step: 1, value: minutes, size: 4 }), " min"),
    h("button", { type: "submit" }, "Apply"));
  const [rollouts, rolloutsBody] = section("Rollouts", "rollouts", legend());
  const [tasks, tasksBody] = section("Batch tasks", "tasks");
  const [alerts, alertsBody] = section("Alerts", "alerts");
  const [guards, guardsBody] = section("Guards", "guards");
  const [dead, deadBody] = section("Webhooks given up on", "dead-letters");
  dead.hidden = true; // only when there are some
  main.replaceChildren(h("h1", {}, "Rollouts"), alerts, filters, rollouts, tasks, guards, dead);

  const cursor = params.get("cursor");
  const asked = {
    app_id: params.get("app_id"), track: params.get("track"), stuck_for: minutes * 60,
    limit: PAGE, cursor,
  };
  return async () => {
    const [page, taskPage, firingPage, guardsNamed, deadPage] = await Promise.all([
      get("/v1/operations" + query(asked)),
      get("/v1/tasks" + query({ app_id: params.get("app_id"), limit: 20 })),
      firingAlerts(), guardsByName(), deadLetters(),
    ]);
    const firing = firingByRollout(firingPage);
    const rows = page.items.map((op) => {
      const r = results(op);
      return h("tr", { "data-operation": op.operation_id, "data-track": op.track, "data-platform": op.platform },
        cell([link(operationHref(op), ident(op.operation_id)), " ", badge(op), " ", firingFlag(firing, op)]),
        cell(op.track),
        cell(ident(op.app_id)),
        cell(count(op.devices), true),
        cell([stateBar(op.states, op.devices, statesOf(op)), platformCounts(op)]),
        cell(count(r.success), true),
        cell(count(r.fail), true),
        cell(r.rate, true),
        cell(op.stuck ? h("strong", { class: "warn" }, count(op.stuck)) : count(op.stuck), true),
        cell(ago(op.last_activity_at)));
    });
    const more = [];
    if (cursor) more.push(link("/" + query({ ...Object.fromEntries(params), cursor: null }), "Newest"));
    if (page.next_cursor) more.push(link("/" + query({ ...Object.fromEntries(params), cursor: page.next_cursor }), "Older rollouts"));
    rolloutsBody.replaceChildren(
      page.items.some((op) => op.platform === "iotda") ? legend(SUBTASK_STATUSES, "IoTDA statuses") : "",
      table("Rollouts",
        ["Operation", "Track", "App", "Devices#", "States", "Success#", "Fail#", "Success rate#", `Stuck > ${minutes} min#`, "Last active"],
        rows, "No rollout has reported yet. Post a notification to /v1/notifications."),
      h("nav", { class: "pager", "aria-label": "Rollout pages" }, more));
    tasksBody.replaceChildren(table("Batch tasks", ["Task", "Type", "Status", "Since"],
      taskPage.items.map((t) => h("tr", { "data-task": t.task_id },
        cell(ident(t.task_id)), cell(t.task_type),
        cell([h("span", { class: `status ${t.status}` }, t.status), t.unpushed.length ? [" ", h("span", {
          class: "flag", "data-unpushed": t.unpushed.join(" "),
          title: "seen by reading IoTDA's API, never pushed: a lost push" }, `never pushed: ${t.unpushed.join(", ")}`)] : null]),
        cell(time(t.event_time)))),
      "No batch task yet."));
    alertsBody.replaceChildren(...firingView(firingPage, guardsNamed));
    guardsBody.replaceChildren(...guardsView(guardsNamed));
    dead.hidden = !deadPage.items.length;
    deadBody.replaceChildren(...(deadPage.items.length ? deadView(deadPage) : []));
  };
}

// "/operations/{id}": one rollout.
export function operation(main, params, operationId) {
  const minutes = stuckMinutes(params);
  const track = params.get("track");
  const heading = h("h1", {}, "Rollout ", h("code", {}, ident(operationId)));
  const facts = h("dl", { class: "facts" });
  const [alerts, alertsBody] = section("Alerts", "alerts");
  const [states, statesBody] = section("States and results", "states");
  const [progress, progressBody] = section("IoTDA's counters beside the devices read", "progress");
  const [failures, failuresBody] = section("Failures by error", "failures");
  const [stuck, stuckBody] = section(`Stuck for more than ${minutes} min`, "stuck");
  const [versions, versionsBody] = section("Target versions", "versions");
  const [activity, activityBody] = section("Activity", "activity");
  const [invalid, invalidBody] = section("Invalid moves", "invalid");
  progress.hidden = true; // an IoTDA rollout's alone
  main.replaceChildren(h("p", {}, link("/", "← All rollouts")), heading, facts,
    alerts, states, progress, activity, h("div", { class: "columns" }, failures, versions), stuck, invalid);
  const open = new Map(); // error groups a person opened stay open across live reloads

  return async () => {
    const op = await get(path("v1", "operations", operationId) + query({ track, stuck_for: minutes * 60 }));
    const r = results(op);
    const kinds = statesOf(op);
    heading.replaceChildren("Rollout ", h("code", {}, ident(operationId)), " ", badge(op));
    facts.replaceChildren(
      h("dt", {}, "Platform"), h("dd", { "data-field": "platform" }, op.platform === "iotda" ? "IoTDA batch task" : "OceanConnect operation"),
      ...(op.task_status ? [h("dt", {}, "Task status"), h("dd", { "data-field": "task-status" }, h("span", { class: `status ${op.task_status}` }, op.task_status))] : []),
      h("dt", {}, "Track"), h("dd", {}, op.track),
      h("dt", {}, "App"), h("dd", {}, ident(op.app_id)),
      h("dt", {}, "Devices"), h("dd", { "data-devices": op.devices }, count(op.devices)),
      h("dt", {}, "First seen"), h("dd", {}, time(op.first_seen_at)),
      h("dt", {}, "Last active"), h("dd", {}, ago(op.last_activity_at)));
    progress.hidden = op.platform !== "iotda";
    progressBody.replaceChildren(...progressView(op));
    statesBody.replaceChildren(
      legend(kinds, op.platform === "iotda" ? "IoTDA statuses" : "States"),
      stateBar(op.states, op.devices, kinds),
      h("ul", { class: "tallies" },
        kinds.map((s) =>
          h("li", { "data-state": s }, h("span", { class: `swatch ${s}` }), `${s} `, h("strong", {}, count(op.states[s])))),
        h("li", { "data-result": "SUCCESS" }, "SUCCESS ", h("strong", {}, count(r.success))),
        h("li", { "data-result": "FAIL" }, "FAIL ", h("strong", {}, count(r.fail))),
        h("li", {}, "success rate ", h("strong", {}, r.rate)),
        h("li", { "data-stuck": op.stuck }, "stuck ", h("strong", {}, count(op.stuck)))));
    failuresBody.replaceChildren(op.errors.length
      ? h("ul", { class: "groups" }, op.errors.map((e) => errorGroup(op, e, open)))
      : h("p", { class: "muted empty" }, "No failure."));
    versionsBody.replaceChildren(table("Target versions", ["Version", "Devices#"],
      Object.entries(op.target_versions).map(([v, n]) => h("tr", {}, cell(h("code", {}, v)), cell(count(n), true))),
      "No result has named a target yet."));
    // At most 240 bars over the rollout's life, a minute each for the first four hours.
    const lifeMinutes = (new Date(op.last_activity_at) - new Date(op.first_seen_at)) / 60_000;
    const step = Math.min(10080, Math.max(1, Math.ceil((lifeMinutes + 1) / 240)));
    // An OceanConnect operation's stuck devices are device tracks; an IoTDA task's, its members.
    const stuckList = op.platform === "iotda"
      ? path("v1", "operations", operationId, "devices") + query({ track: op.track, stuck_for: minutes * 60, limit: PAGE })
      : "/v1/devices" + query({ operation_id: operationId, track: op.track, stuck_for: minutes * 60, limit: PAGE });
    const [activityList, moves, stuckPage, alertPage, guardsNamed] = await Promise.all([
      get(path("v1", "operations", operationId, "activity") + query({ track: op.track, step })),
      get(path("v1", "operations", operationId, "invalid-moves") + query({ track: op.track, limit: PAGE })),
      get(stuckList),
      alertsOf(operationId), guardsByName(),
    ]);
    alertsBody.replaceChildren(...rolloutAlertsView(alertPage, guardsNamed, op.track));
    activityBody.replaceChildren(activityChart(activityList.items, activityList.step));
    const invalidCount = activityList.items.reduce((n, i) => n + i.invalid, 0);
    invalidBody.replaceChildren(
      h("p", { "data-invalid": invalidCount }, h("strong", {}, count(invalidCount)),
        " state reports this rollout's machine does not allow", invalidCount > PAGE ? ` (the first ${PAGE} below)` : "", "."),
      table("Invalid moves, oldest first", ["#", "Received", "Device", "Move"],
        moves.items.map((m) => h("tr", { "data-position": m.position, "data-device": m.device_id },
          cell(String(m.position), true), cell(time(m.received_at)),
          cell(link(deviceHref(m.device_id), ident(m.device_id))), cell(`${m.from_state ?? "–"} → ${m.to_state}`))),
        "None: every report followed the machine."));
    stuckBody.replaceChildren(table("Stuck devices, longest first", ["Device", "State", "Stuck for#", "Since"],
      stuckPage.items.map((d) => {
        const t = op.platform === "iotda" ? d : d[op.track]; // a member, or the device's track
        return h("tr", { "data-device": d.device_id },
          cell(link(deviceHref(d.device_id), ident(d.device_id))), cell(t.state),
          cell(duration((Date.now() - new Date(t.state_since).getTime()) / 1000), true),
          cell(time(t.state_since)));
      }), "No device is stuck."));
  };
}

// An IoTDA rollout's counters as the platform keeps them (task_progress) beside the devices the
// tracker has read, the rows that differ marked, and a warning above them when any does.
function progressView(op) {
  if (op.platform !== "iotda") return [];
  const rows = progressRows(op);
  if (!rows) return [h("p", { class: "muted empty" }, "IoTDA's own counters have not been read yet.")];
  return [
    op.progress_disagrees
      ? h("p", { class: "warning", "data-disagrees": "true" }, h("strong", {}, "IoTDA's counters disagree with the devices read. "),
        "A read of the task's devices may still be under way, or a device's change was missed; the rows that differ are marked.")
      : h("p", { class: "muted", "data-disagrees": "false" }, "IoTDA's counters agree with the devices read."),
    table("IoTDA's counters and the tracker's", ["Counter", "IoTDA#", "Devices read#", ""],
      rows.map(([name, theirs, ours]) => h("tr", { "data-counter": name, class: theirs === ours ? null : "differs" },
        cell(name), cell(count(theirs), true), cell(count(ours), true),
        cell(theirs === ours ? "" : h("strong", { class: "warn" }, "differs"))))),
    h("p", { class: "muted" }, "Read ", ago(op.progress_at), "."),
  ];
}

// One error's group; `open` remembers the groups a person opened and the devices last listed in
// each, so a live reload draws them at once and then reads them again.
function errorGroup(op, error, open) {
  const key = `${error.error_code}\u0000${error.result_desc}`;
  const list = h("div", { class: "members" });
  const draw = (ids, more) => list.replaceChildren(...[h("ul", { class: "devices" },
    ids.map((id) => h("li", { "data-device": id }, link(deviceHref(id), ident(id))))),
  more ? h("p", { class: "muted" }, "First 200 shown.") : null].filter(Boolean));
  let loading = null; // one read at a time (the toggle of a group drawn open asks again)
  const load = () => {
    loading ??= read().finally(() => { loading = null; });
    return loading;
  };
  const read = async () => {
    if (error.error_code === null) {
      list.replaceChildren(h("p", { class: "muted" }, "The platform sent no error code for these."));
      return;
    }
    const page = await get(path("v1", "operations", op.operation_id, "devices") +
      query({ track: op.track, result: "FAIL", error_code: error.error_code, limit: 200 }));
    const ids = page.items.map((m) => m.device_id);
    if (open.has(key)) open.set(key, [ids, page.next_cursor !== null]);
    draw(ids, page.next_cursor !== null);
  };
  const details = h("details", { "data-error-code": error.error_code ?? "", open: open.has(key) },
    h("summary", {}, h("code", {}, error.error_code ?? "(no code)"), " ",
      h("span", {}, error.result_desc ?? ""), " · ", h("strong", {}, count(error.devices)), error.devices === 1 ? " device" : " devices"),
    list);
  if (open.has(key)) {
    draw(...(open.get(key) ?? [[], false]));
    load();
  }
  // Remembered on the click itself, not on "toggle" (which comes a task later): a live reload
  // in between draws the groups from `open`, and must draw this one open.
  details.querySelector("summary").addEventListener("click", () => {
    if (details.open) open.delete(key);
    else open.set(key, null);
  });
  details.addEventListener("toggle", () => {
    if (details.open) load();
  });
  return h("li", {}, details);
}

// "/devices/{id}": both tracks and the timeline.
export function device(main, params, deviceId) {
  const [tracks, tracksBody] = section("Tracks", "tracks");
  const [tasks, tasksBody] = section("IoTDA tasks", "device-tasks");
  const [timeline, timelineBody] = section("Timeline", "timeline");
  main.replaceChildren(h("p", {}, link("/", "← All rollouts")), h("h1", {}, "Device ", h("code", {}, ident(deviceId))), tracks, tasks, timeline);
  const shown = new Map(); // positions whose body a person opened

  return async () => {
    const found = await get(path("v1", "devices", deviceId));
    tracksBody.replaceChildren(h("div", { class: "columns" },
      TRACKS.map((name) => trackCard(name, found[name]))));
    tasksBody.replaceChildren(table("IoTDA tasks, the latest first",
      ["Task", "Track", "Status", "Since", "Error", "Updated"],
      found.tasks.map((t) => h("tr", { "data-task": t.task_id },
        cell(link(path("operations", t.task_id) + query({ track: t.track }), ident(t.task_id))), cell(t.track),
        cell(h("span", { class: `status ${t.status}` }, t.status)), cell(time(t.state_since)),
        cell(t.error_code ? [h("code", {}, t.error_code), " ", t.error_msg ?? ""] : t.error_msg ?? "–"),
        cell(time(t.updated_at)))),
      "No IoTDA task has named this device."));
    const items = [];
    let cursor = null;
    do {
      const page = await get(path("v1", "devices", deviceId, "transitions") + query({ limit: 500, cursor }));
      items.push(...page.items);
      cursor = page.next_cursor;
    } while (cursor && items.length < 5000);
    timelineBody.replaceChildren(table("Timeline, oldest first",
      ["#", "Received", "Track", "What", "Operation", "Notes", "Body"],
      items.flatMap((t) => timelineRows(t, shown)), "Nothing recorded."));
  };
}

function trackCard(name, track) {
  if (!track) return h("article", { class: "card", "data-track": name }, h("h3", {}, name), h("p", { class: "muted" }, "No report on this track."));
  const result = track.last_result;
  return h("article", { class: "card", "data-track": name },
    h("h3", {}, name),
    h("dl", { class: "facts" },
      h("dt", {}, "State"), h("dd", { "data-field": "state" }, track.state ?? "–"),
      h("dt", {}, "Since"), h("dd", {}, time(track.state_since)),
      h("dt", {}, "Version"), h("dd", {}, track.version ?? "–"),
      h("dt", {}, "Operation"), h("dd", {}, link(path("operations", track.operation_id) + query({ track: name }), ident(track.operation_id))),
      h("dt", {}, "Last result"), h("dd", { "data-field": "result" }, result
        ? [h("span", { class: `result ${result.result}` }, result.result), result.error_code ? [" ", h("code", {}, result.error_code)] : null]
        : "–")));
}

// Why a delivery was not applied (tracker/domain/device.py): deliveries come in any order.
const NOT_APPLIED = {
  stale: ["stale", "its sub-operation had already gone past it: it changed nothing"],
  earlier_operation: ["earlier operation", "it counts in its own operation, but the device is in another one now"],
};

function timelineRows(t, shown) {
  const notes = [];
  if (!t.valid) notes.push(h("span", { class: "flag invalid", title: "a move the platform's machine does not make" }, "invalid"));
  if (!t.applied) {
    const [label, why] = NOT_APPLIED[t.reason] ?? ["not applied", "it changed nothing"];
    notes.push(h("span", { class: "flag", title: why }, label));
  }
  if (t.inconsistent) notes.push(h("span", { class: "flag", title: "step and stepDesc disagreed" }, "inconsistent"));
  if (t.kind === "subtask") notes.push(h("span", { class: "flag", title: "an IoTDA subtask's status, read through IoTDA's API" }, "IoTDA"));
  const what = t.kind === "result"
    ? [h("span", { class: `result ${t.result?.result}` }, t.result?.result ?? "result"), t.result?.error_code ? [" ", h("code", {}, t.result.error_code)] : null]
    : [`${t.from_state ?? "–"} → ${t.to_state}`, t.result?.error_code ? [" ", h("code", {}, t.result.error_code)] : null];
  const body = h("tr", { class: "body-row", "data-body-of": t.position, hidden: !shown.has(t.position) },
    h("td", { colspan: 7 }, h("pre", { class: "raw" }, shown.get(t.position) ?? "")));
  const toggle = h("button", { type: "button", class: "quiet", "aria-expanded": String(shown.has(t.position)) }, "body");
  toggle.addEventListener("click", async () => {
    if (shown.has(t.position)) {
      shown.delete(t.position);
    } else {
      const raw = await text(path("v1", "events", String(t.position), "raw"));
      let pretty = raw;
      try { pretty = JSON.stringify(JSON.parse(raw), null, 2); } catch { /* shown as received */ }
      shown.set(t.position, pretty);
    }
    // A live reload may have drawn the timeline again meanwhile: change the row on the page.
    const row = document.querySelector(`tr[data-body-of="${t.position}"]`);
    const button = document.querySelector(`tr[data-position="${t.position}"] button`);
    if (!row || !button) return;
    row.querySelector("pre").textContent = shown.get(t.position) ?? "";
    row.hidden = !shown.has(t.position);
    button.setAttribute("aria-expanded", String(shown.has(t.position)));
  });
  return [
    h("tr", { "data-position": t.position, class: t.valid ? null : "invalid", "data-valid": String(t.valid) },
      cell(String(t.position), true), cell(time(t.received_at)), cell(t.track), cell(what),
      cell(link(path("operations", t.operation_id) + query({ track: t.track }), ident(t.operation_id))),
      cell(notes), cell(toggle)),
    body,
  ];
}

// "/rejected": refused deliveries, newest first.
export function rejected(main, params) {
  const [list, listBody] = section("Newest first", "refusals");
  main.replaceChildren(h("h1", {}, "Rejected deliveries"),
    h("p", { class: "muted" }, "What the tracker refused, and why: each was answered with an error and kept here, not in the log."),
    list);
  const cursor = params.get("cursor");
  return async () => {
    const page = await get("/v1/rejected" + query({ order: "newest", limit: PAGE, cursor }));
    listBody.replaceChildren(table("Rejected deliveries",
      ["Id#", "Received", "Status#", "Code", "Reason", "Bytes#", "First bytes"],
      page.items.map((r) => h("tr", { "data-rejected": r.id },
        cell(String(r.id), true), cell(time(r.received_at)), cell(String(r.status), true),
        cell(h("code", {}, r.code)), cell(h("span", { class: "wrap" }, r.reason)), cell(r.size === null ? "–" : count(r.size), true),
        cell(h("code", { class: "excerpt" }, excerpt(r))))),
      "Nothing refused."),
      h("nav", { class: "pager", "aria-label": "Rejected pages" },
        cursor ? link("/rejected", "Newest") : null,
        page.next_cursor ? link("/rejected" + query({ cursor: page.next_cursor }), "Older") : null));
  };
}

function excerpt(r) {
  const shown = r.body ?? `(not UTF-8) base64 ${r.body_base64}`;
  return shown.length > 160 ? shown.slice(0, 160) + "…" : shown;
}
