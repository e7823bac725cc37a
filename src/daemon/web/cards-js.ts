/**
 * cards.js: a pending approval as a Diff Card element (headline, verdict, risk
 * and why, the body by kind, Approve / Deny). Mirrors approval/render.ts's text
 * form so the terminal and the page show the same facts.
 */
export const CARDS_JS = String.raw`
import { el, fmtTime, num } from "./dom.js";

/** argv as a person would type it (as approval/card-actions formatArgv). */
export function formatArgv(argv) {
  if (argv.length === 1) return String(argv[0]);
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : "'" + String(a).replace(/'/g, "'\\''") + "'")).join(" ");
}

function diffClass(line) {
  if (line.startsWith("+++") || line.startsWith("---")) return "meta";
  if (line.startsWith("@@")) return "hunk";
  if (line.startsWith("+")) return "add";
  if (line.startsWith("-")) return "del";
  if (line.startsWith("#") || line.startsWith("…")) return "note";
  return "ctx";
}

/** A unified diff as a pre with one span per line; the +/- stay in the text, so colour is not the only cue. */
export function diffBlock(diff) {
  const pre = el("pre", { class: "diff", attrs: { tabindex: "0", "aria-label": "Changes" } });
  const lines = diff === "" ? ["(no change)"] : String(diff).split("\n");
  for (const line of lines) pre.append(el("span", { class: diffClass(line), text: line }), "\n");
  return pre;
}

function facts(pairs) {
  const dl = el("dl", { class: "facts" });
  for (const [k, v] of pairs) if (v !== undefined) dl.append(el("dt", { text: k }), el("dd", { text: v === null ? "(not given)" : v }));
  return dl;
}

const cutNote = () => el("p", { class: "note", text: "(the card itself is cut; the counts cover everything)" });

/** The card's body by kind; an unknown kind shows its JSON, as text. */
export function cardBody(b) {
  b = b || {};
  switch (b.kind) {
    case "file-write":
      return el("div", { class: "body file-write" },
        el("p", { class: "mono", text: (b.existed ? "file " : "new file ") + b.path + "  +" + num(b.added) + " −" + num(b.removed) + "  (" + num(b.newBytes) + " bytes after)" }),
        diffBlock(b.diff),
        b.truncated ? cutNote() : null);
    case "file-delete":
      return el("div", { class: "body file-delete" }, facts([
        ["delete", String(b.path)],
        ["what", !b.existed ? "does not exist" : b.entries !== null ? "directory, " + num(b.entries) + " entries" : b.bytes !== null ? num(b.bytes) + " bytes" : "size unknown"],
      ]));
    case "file-move":
      return el("div", { class: "body file-move" },
        facts([["move", String(b.from)], ["to", String(b.to)]]),
        b.overwrites ? el("p", { class: "warn", text: "Replaces what is at the destination." }) : null);
    case "command":
      return el("div", { class: "body command" },
        el("pre", { text: "$ " + formatArgv(Array.isArray(b.argv) ? b.argv : []) }),
        facts([["cwd", b.cwd === null ? "(the server's default)" : String(b.cwd)], ["argv", JSON.stringify(b.argv)]]));
    case "message":
      return el("div", { class: "body message" },
        facts([
          ["to", b.recipient === null ? undefined : String(b.recipient)],
          ["endpoint", b.endpoint === null ? undefined : String(b.endpoint)],
          ["subject", b.subject === null ? undefined : String(b.subject)],
        ]),
        el("pre", { text: String(b.body) }),
        b.truncated ? cutNote() : null);
    case "money":
      return el("div", { class: "body money" }, facts([
        ["amount", String(b.amount) + (b.currency ? " " + b.currency : "")],
        ["from", b.from === null ? null : String(b.from)],
        ["to", b.to === null ? null : String(b.to)],
      ]));
    case "generic":
      return el("div", { class: "body generic" }, el("p", { class: "why", text: "arguments:" }), el("pre", { text: String(b.args) }), b.truncated ? cutNote() : null);
    default:
      return el("div", { class: "body unknown" }, el("pre", { text: JSON.stringify(b, null, 2) }));
  }
}

/**
 * A pending entry ({id, hash, expiresAt, cardJson}) as an article with Approve and Deny.
 * actions.approve(entry) / actions.deny(entry, reason) return promises; errors show in the card.
 */
export function renderCard(entry, actions) {
  const card = entry.cardJson || {};
  const cls = card.classification || {};
  const name = String(card.server) + "__" + String(card.tool);
  const verdict = cls.verdict === "green" ? "green" : "red";
  const headId = "card-" + String(entry.id).replace(/[^\w-]/g, "_");
  const status = el("p", { class: "card-status", attrs: { "aria-live": "polite" } });
  const reason = el("input", { attrs: { type: "text", name: "reason", maxlength: "2000", autocomplete: "off", placeholder: "optional" } });
  const approve = el("button", { class: "approve", text: "Approve", attrs: { type: "button", "aria-describedby": headId } });
  const deny = el("button", { class: "deny", text: "Deny", attrs: { type: "button", "aria-describedby": headId } });
  const article = el("article", { class: "card", attrs: { "data-approval-id": entry.id, "aria-labelledby": headId } });

  const busy = async (fn) => {
    approve.disabled = deny.disabled = reason.disabled = true;
    article.classList.add("busy");
    status.textContent = "Sending…";
    status.classList.remove("error");
    try {
      await fn();
      status.textContent = "Sent; waiting for the daemon to confirm…";
    } catch (err) {
      status.textContent = (err && err.code ? err.code + ": " : "") + (err && err.message ? err.message : String(err));
      status.classList.add("error");
      approve.disabled = deny.disabled = reason.disabled = false;
      article.classList.remove("busy");
    }
  };
  approve.addEventListener("click", () => busy(() => actions.approve(entry)));
  deny.addEventListener("click", () => busy(() => actions.deny(entry, reason.value.trim())));
  reason.addEventListener("keydown", (e) => {
    if (e.key === "Enter") deny.click();
  });

  append(article, [
    el("div", { class: "card-head" },
      el("h3", { text: name, attrs: { id: headId } }),
      el("span", { class: "badge " + verdict, text: verdict.toUpperCase() }),
      el("span", { class: "risk-" + String(cls.risk), text: "risk " + String(cls.risk) })),
    el("p", { class: "summary", text: card.summary }),
    el("p", { class: "why", text: "why: " + String(cls.reason) + " (" + String(cls.rule) + ")" }),
    cardBody(card.body),
    el("div", { class: "card-actions" },
      approve,
      el("label", {}, "Reason for denying", reason),
      deny,
      el("span", { class: "expires", text: entry.expiresAt ? "expires " + fmtTime(entry.expiresAt) : "" })),
    status,
  ]);
  return article;
}

function append(node, children) {
  for (const c of children) if (c) node.append(c);
}
`;
