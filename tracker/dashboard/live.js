// Live updates: /v1/stream says something committed; the page then reads its API documents
// again. Many events in a burst make one reload (coalesced), and a lost connection is retried
// by itself, with the page saying so meanwhile.

// An `alert` (a guard's alert fired or resolved) may come with no transition: the guards' clock
// fires stuck and silent alerts on time alone.
const EVENTS = ["device_transition", "device_result", "task_transition", "alert"];
const SETTLE_MS = 150; // gather a burst into one reload: well inside the 1 s a person waits

// A function that runs `reload` soon, once for any number of calls meanwhile, never two at once.
export function coalesced(reload) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await reload();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(run, SETTLE_MS);
  };
  return schedule;
}

// Follow /v1/stream (with `filter`, e.g. "?operation_id=x"); `changed` on every event and on
// every (re)connection, since events may have been missed while away. `status` is told
// "live", "reconnecting" or "signed-out". EventSource retries a dropped connection itself, but
// gives up on an HTTP error (a server starting, a 503): then we start a new one, backing off.
export function follow(filter, changed, status, stillSignedIn) {
  let source = null;
  let wait = 1000;
  const open = () => {
    source = new EventSource(`/v1/stream${filter}`);
    source.addEventListener("open", () => {
      wait = 1000;
      status("live");
      changed();
    });
    source.addEventListener("error", async () => {
      status("reconnecting");
      if (source.readyState !== EventSource.CLOSED) return; // the browser retries by itself
      if (!(await stillSignedIn())) {
        status("signed-out");
        return;
      }
      setTimeout(open, wait);
      wait = Math.min(wait * 2, 8000);
    });
    for (const kind of EVENTS) source.addEventListener(kind, changed);
  };
  open();
  return () => source?.close();
}
