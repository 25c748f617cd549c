// The dashboard: which view the path names, sign-in when the read API asks for it, live updates.

import { Unauthorized, session, signIn, signOut } from "./api.js";
import { h } from "./dom.js";
import { coalesced, follow } from "./live.js";
import { device, operation, overview, rejected } from "./views.js";

const main = document.getElementById("main");
const live = document.getElementById("live");
const signOutButton = document.getElementById("sign-out");
const REJECTED_POLL_MS = 1000; // refusals are not in /v1/stream: read them again this often
const STOP_POLL_MS = 2000; // nor is a StopBatchTask's outcome: read again while one is pending
let leaving = false; // signing out: read nothing more
let stopFollowing = () => {};
let reading = Promise.resolve(); // the reload in flight, which sign-out lets finish first

const SAID = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "disconnected: reconnecting…",
  "signed-out": "signed out",
};

function status(state) {
  live.dataset.state = state;
  live.textContent = SAID[state];
}

// The view the path names, and what it follows on /v1/stream.
function route() {
  const params = new URLSearchParams(location.search);
  const parts = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "operations" && parts.length === 2) {
    return { nav: "overview", title: `Rollout ${parts[1]}`, filter: `?operation_id=${encodeURIComponent(parts[1])}`,
      mount: () => operation(main, params, parts[1]) };
  }
  if (parts[0] === "devices" && parts.length === 2) {
    return { nav: null, title: `Device ${parts[1]}`, filter: `?device_id=${encodeURIComponent(parts[1])}`,
      mount: () => device(main, params, parts[1]) };
  }
  if (parts[0] === "rejected") {
    return { nav: "rejected", title: "Rejected", filter: null, mount: () => rejected(main, params) };
  }
  return { nav: "overview", title: "Rollouts", filter: "", mount: () => overview(main, params) };
}

async function signedIn() {
  try {
    return (await session()).signed_in;
  } catch {
    return true; // the server is away: keep trying, sign-in is not the question
  }
}

function askForToken(then) {
  stopFollowing(); // a new sign-in starts its own
  status("signed-out");
  const error = h("p", { class: "error", role: "alert" });
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "This tracker asks for its read token (", h("code", {}, "TRACKER_READ_TOKEN"),
      "). It is kept in a cookie scripts cannot read, for 12 hours."),
    h("label", { for: "token" }, "Read token"), input, error,
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      await signIn(input.value);
      then();
    } catch (failure) {
      error.textContent = failure instanceof Unauthorized ? "That is not the read token." : `Could not sign in: ${failure.message}`;
      input.select();
    }
  });
  main.replaceChildren(form);
  main.setAttribute("aria-busy", "false");
  input.focus();
}

function failed(failure) {
  const note = h("p", { class: "error", role: "alert" }, `Could not read the API: ${failure.message}`);
  main.prepend(note);
}

async function start() {
  const state = await session().catch(() => ({ required: false, signed_in: true }));
  if (!state.signed_in) {
    askForToken(start);
    return;
  }
  signOutButton.hidden = !state.required;
  const view = route();
  document.title = `${view.title} · tracker`;
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === view.nav) a.setAttribute("aria-current", "page");
  }
  const reload = view.mount();
  let changed = () => {}; // until the first draw is done
  const show = () => {
    if (leaving) return reading;
    reading = draw();
    return reading;
  };
  const draw = async () => {
    try {
      await reload();
      main.querySelector(":scope > .error")?.remove();
    } catch (failure) {
      if (failure instanceof Unauthorized) {
        askForToken(start);
        return;
      }
      failed(failure);
    } finally {
      main.setAttribute("aria-busy", "false");
      document.body.dataset.rendered = String(Date.now());
      if (main.querySelector("[data-stop='pending']")) setTimeout(() => changed(), STOP_POLL_MS);
    }
  };
  await show();
  changed = coalesced(show);
  if (view.filter === null) {
    status("live");
    const polling = setInterval(() => document.visibilityState === "visible" && changed(), REJECTED_POLL_MS);
    stopFollowing = () => clearInterval(polling);
  } else {
    stopFollowing = follow(view.filter, changed, (s) => (s === "signed-out" ? askForToken(start) : status(s)), signedIn);
  }
}

signOutButton.addEventListener("click", async () => {
  leaving = true;
  stopFollowing();
  await reading.catch(() => {});
  await signOut();
  location.assign("/");
});

start();
