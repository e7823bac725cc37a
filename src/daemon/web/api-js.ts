/**
 * api.js: the token, JSON calls and the event stream. The token comes from the
 * URL fragment (#token=..., never sent to a server) and is kept in memory and
 * sessionStorage (this tab only); it travels only in the Authorization header.
 * The event stream is read with fetch and a stream reader because EventSource
 * cannot send headers; it reconnects with Last-Event-ID so nothing is missed.
 */
export const API_JS = String.raw`
const KEY = "luminaguard.token";
let token = null;

/** Read the token from #token=... (then drop the fragment from the address bar) or this tab's storage. */
export function loadToken() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (m) {
    token = decodeURIComponent(m[1]).trim() || null;
    try {
      if (token) sessionStorage.setItem(KEY, token);
    } catch (_) {
      // Storage may be off: the token then lives in memory for this page only.
    }
    // Out of the address bar, history and bookmarks; a reload finds it in sessionStorage.
    history.replaceState(null, "", location.pathname + location.search);
  } else {
    try {
      token = sessionStorage.getItem(KEY);
    } catch (_) {
      token = null;
    }
  }
  return token;
}

/** Forget the token (it was refused). */
export function dropToken() {
  token = null;
  try {
    sessionStorage.removeItem(KEY);
  } catch (_) {
    // nothing kept
  }
}

/** An API error with the daemon's stable code and its message (which says what to do). */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  const h = new Headers(extra || {});
  if (token) h.set("authorization", "Bearer " + token);
  return h;
}

/** Call the API; resolves with the JSON body, rejects with an ApiError. */
export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { "content-type": "application/json" }), cache: "no-store", credentials: "omit" };
  if (body !== undefined) init.body = JSON.stringify(body);
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "E_NETWORK", "The daemon did not answer (" + (err && err.message) + "); is it still running?");
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch (_) {
    json = null;
  }
  if (!res.ok) {
    const e = json && json.error;
    throw new ApiError(res.status, (e && e.code) || "E_HTTP_" + res.status, (e && e.message) || "The daemon answered HTTP " + res.status + ".");
  }
  return json;
}

function parseBlock(block) {
  const out = { id: null, type: "message", data: [], retry: null };
  for (const line of block.split("\n")) {
    if (line === "" || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "id") out.id = value;
    else if (field === "event") out.type = value;
    else if (field === "data") out.data.push(value);
    else if (field === "retry" && /^\d+$/.test(value)) out.retry = Number(value);
  }
  return out;
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    });
  });

/**
 * Follow GET /v1/events. onEvent(type, data) per event; onState("open" | "down" |
 * "unauthorized", detail) as the connection changes. Returns a function that stops it.
 */
export function followEvents(onEvent, onState) {
  const stop = new AbortController();
  let lastId = null;
  let retryMs = 3000;
  (async () => {
    while (!stop.signal.aborted) {
      try {
        const h = headers({ accept: "text/event-stream" });
        if (lastId !== null) h.set("last-event-id", lastId);
        const res = await fetch("/v1/events", { headers: h, signal: stop.signal, cache: "no-store", credentials: "omit" });
        if (res.status === 401) {
          onState("unauthorized", "The event stream refused the token.");
          return;
        }
        if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
        onState("open");
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          buf = buf.replace(/\r\n?/g, "\n");
          let cutAt;
          while ((cutAt = buf.indexOf("\n\n")) >= 0) {
            const ev = parseBlock(buf.slice(0, cutAt));
            buf = buf.slice(cutAt + 2);
            if (ev.retry !== null) retryMs = ev.retry;
            if (ev.id !== null) lastId = ev.id;
            if (ev.data.length === 0) continue;
            let data;
            try {
              data = JSON.parse(ev.data.join("\n"));
            } catch (_) {
              continue;
            }
            try {
              onEvent(ev.type, data && typeof data === "object" ? data : {});
            } catch (err) {
              console.error("dashboard: handling " + ev.type + " failed", err);
            }
          }
        }
        if (stop.signal.aborted) return;
        onState("down", "The event stream ended; reconnecting…");
      } catch (err) {
        if (stop.signal.aborted) return;
        onState("down", "The event stream broke (" + (err && err.message) + "); reconnecting…");
      }
      await sleep(retryMs, stop.signal);
    }
  })();
  return () => stop.abort();
}
`;
