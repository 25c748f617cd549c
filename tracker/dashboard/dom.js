// Building the page from API documents: elements with text (never HTML from data), times in the
// viewer's zone with UTC on hover, counts, durations and the state bar.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "style") Object.assign(element.style, value); // CSSOM: allowed by our CSP
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const NUMBER = new Intl.NumberFormat();
const PERCENT = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

export function time(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const at = new Date(iso);
  return h("time", { datetime: iso, title: `${at.toISOString()} (UTC)` }, LOCAL.format(at));
}

export function ago(iso) {
  if (!iso) return h("span", { class: "muted" }, "–");
  const at = new Date(iso);
  return h("time", { datetime: iso, title: `${LOCAL.format(at)} · ${at.toISOString()} (UTC)` },
    `${duration((Date.now() - at.getTime()) / 1000)} ago`);
}

export function count(n) {
  return NUMBER.format(n ?? 0);
}

export function percent(part, whole) {
  return whole ? PERCENT.format(part / whole) : "–";
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// The API's values, as tracker/domain/notifications.py declares them (tests/unit/test_values.py
// holds these to it): a device's tracks, and a track's states in the machine's order; an IoTDA
// subtask's statuses, spelled as IoTDA spells them ("Waitting" too).
export const TRACKS = ["software", "firmware"];
export const STATES = ["idle", "downloading", "downloaded", "updating"];
export const SUBTASK_STATUSES = ["Waitting", "Processing", "Success", "Fail", "FailWaitRetry", "Stopped", "Removed"];

// A rollout's platform (OperationDocument.platform), and the states its members are in.
export const PLATFORMS = { oceanconnect: "OceanConnect", iotda: "IoTDA" };

export function statesOf(op) {
  return op.platform === "iotda" ? SUBTASK_STATUSES : STATES;
}

export function badge(op) {
  return h("span", { class: `badge ${op.platform}`, "data-platform": op.platform,
    title: op.platform === "iotda" ? "an IoTDA batch task: its devices as read through IoTDA's API" : "an OceanConnect operation: its devices push their states" },
  PLATFORMS[op.platform] ?? op.platform);
}

// Devices by state as one bar; the numbers are in its label and its legend, not in colour alone.
export function stateBar(states, total, kinds = STATES) {
  const parts = kinds.map((state) => [state, states[state] ?? 0]);
  const label = parts.map(([state, n]) => `${state} ${count(n)}`).join(", ");
  return h("div", { class: "bar", role: "img", "aria-label": label, title: label },
    parts.filter(([, n]) => n > 0).map(([state, n]) =>
      h("span", { class: `seg ${state}`, "data-state": state, "data-count": n,
        style: { width: `${(100 * n) / Math.max(total, 1)}%` } })));
}

export function legend(kinds = STATES, name = "States") {
  return h("ul", { class: "legend", "aria-label": name },
    kinds === STATES ? null : h("li", { class: "muted" }, `${name}:`),
    kinds.map((state) => h("li", {}, h("span", { class: `swatch ${state}` }), state)));
}

// The platform's own counters of an IoTDA task (task_progress) beside the members' as the
// tracker counts them: [name, IoTDA's, ours] per counter; null for a rollout with none.
// task_progress names a status in snake case: FailWaitRetry is fail_wait_retry.
const counterOf = (status) => status.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();

export function progressRows(op) {
  if (!op.task_progress) return null;
  return [["total", op.task_progress.total, op.devices],
    ...SUBTASK_STATUSES.map((s) => [s, op.task_progress[counterOf(s)], op.states[s] ?? 0])];
}

export function disagreement(op) {
  if (!op.progress_disagrees) return null;
  return h("span", { class: "flag disagrees", "data-disagrees": "true",
    title: "IoTDA's own counters (task_progress) differ from the devices the tracker has read" },
  "IoTDA's counters differ");
}

export function table(caption, headings, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted empty" }, empty);
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": caption },
    h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, headings.map((text) =>
        h("th", { scope: "col", class: text.endsWith("#") ? "num" : null },
          text.replace(/#$/, ""))))),
      h("tbody", {}, rows)));
}

export function cell(content, numeric = false) {
  return h("td", { class: numeric ? "num" : null }, content);
}

// An id as the platform sent it and, when it is not plain printable ASCII, a marker naming its
// unusual code points: "café" spelled with U+00E9 and "café" spelled e + U+0301 look alike but
// are two ids (they are compared exactly as sent), and the marker tells them apart. Its title
// holds the whole id escaped and every code point.
const PLAIN = /^[\x20-\x7e]*$/;
const MARKED = 3; // unusual code points named on the marker itself; the title has them all

export function ident(text) {
  if (typeof text !== "string" || PLAIN.test(text)) return text;
  const chars = Array.from(text);
  const points = chars.map(codePoint);
  const unusual = [...new Set(chars.filter((c) => !PLAIN.test(c)).map(codePoint))];
  const named = unusual.slice(0, MARKED).join(" ") + (unusual.length > MARKED ? " …" : "");
  const escaped = chars.map((c) => (PLAIN.test(c) && c !== "\\" ? c : escapeCodePoint(c))).join("");
  return [text, h("abbr", {
    class: "lookalike",
    title: `not plain ASCII: ${escaped} = ${points.join(" ")}`,
    "data-code-points": points.join(" "),
  }, named)];
}

function codePoint(c) {
  return "U+" + c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
}

function escapeCodePoint(c) {
  const hex = c.codePointAt(0).toString(16).padStart(4, "0");
  return hex.length > 4 ? `\\u{${hex}}` : `\\u${hex}`;
}

export function link(href, text) {
  return h("a", { href }, text);
}

export function path(...parts) {
  return "/" + parts.map((p) => encodeURIComponent(p)).join("/");
}

export function query(params) {
  const kept = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "");
  return kept.length ? "?" + new URLSearchParams(kept).toString() : "";
}

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, String(value));
  element.append(...children);
  return element;
}

// Activity per bucket as stacked bars (state reports, successes, failures) with invalid moves
// marked above them; the same figures are in its label and in a table under it.
export function activityChart(items, step) {
  const width = 960, height = 150, top = 14;
  const totals = items.map((i) => i.reports + i.successes + i.failures);
  const most = Math.max(1, ...totals);
  const first = items.length ? new Date(items[0].minute).getTime() : 0;
  const last = items.length ? new Date(items[items.length - 1].minute).getTime() : 0;
  const buckets = Math.max(1, Math.round((last - first) / (step * 60_000)) + 1);
  const slot = width / Math.max(buckets, 60); // a young rollout's few bars stay bars
  const bar = Math.max(1, slot * 0.8);
  const y = (n) => ((height - top) * n) / most;
  const marks = items.flatMap((item) => {
    const x = (Math.round((new Date(item.minute).getTime() - first) / (step * 60_000)) * slot);
    let base = height;
    const parts = [];
    for (const [kind, n] of [["reports", item.reports], ["successes", item.successes], ["failures", item.failures]]) {
      if (!n) continue;
      base -= y(n);
      parts.push(s("rect", { class: kind, x: x.toFixed(1), y: base.toFixed(1), width: bar.toFixed(1), height: y(n).toFixed(1) }));
    }
    if (item.invalid) parts.push(s("rect", { class: "invalid", x: x.toFixed(1), y: (base - 6).toFixed(1), width: bar.toFixed(1), height: 4 }));
    return parts;
  });
  const sum = (k) => items.reduce((n, i) => n + i[k], 0);
  const label = `Per ${step} min: ${count(sum("reports"))} state reports (${count(sum("invalid"))} invalid), ` +
    `${count(sum("successes"))} successes, ${count(sum("failures"))} failures, most in one bucket ${count(most)}`;
  return h("figure", { class: "chart" },
    s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, preserveAspectRatio: "none" },
      s("title", {}, label), ...marks),
    h("figcaption", { class: "muted" },
      h("span", {}, items.length ? time(items[0].minute) : "–"), " → ",
      h("span", {}, items.length ? time(items[items.length - 1].minute) : "–"),
      ` · ${step} min per bar · tallest ${count(most)} · `,
      h("span", { class: "key reports" }, "reports"), " ", h("span", { class: "key successes" }, "successes"), " ",
      h("span", { class: "key failures" }, "failures"), " ", h("span", { class: "key invalid" }, "invalid")));
}
