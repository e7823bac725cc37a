/**
 * dom.js: the only way the dashboard builds elements. Data from the API is
 * hostile (tool arguments, diffs and reasons come from agents and servers), so
 * text goes in through text nodes and attributes through setAttribute; nothing
 * here parses HTML. The CSP's Trusted Types rule makes innerHTML throw anyway.
 * Browser JS in a raw string: no backticks, no dollar-brace.
 */
export const DOM_JS = String.raw`
const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, props, children) {
  props = props || {};
  if (props.class) node.setAttribute("class", props.class);
  if (props.text !== undefined && props.text !== null) node.textContent = String(props.text);
  const attrs = props.attrs || {};
  for (const name of Object.keys(attrs)) {
    // Event handlers only through props.on: an on* attribute would be code.
    if (/^on/i.test(name)) throw new Error("dom.js refuses the attribute " + name);
    const value = attrs[name];
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(name, value === true ? "" : String(value));
  }
  const on = props.on || {};
  for (const type of Object.keys(on)) node.addEventListener(type, on[type]);
  append(node, children);
  return node;
}

/** Append children: nodes as they are, anything else as a text node. */
export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element with props {class, text, attrs, on} and children (nodes or text). */
export function el(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** An SVG element, same props. */
export function svg(tag, props, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), props, children);
}

/** The element with this id; throws when the page lacks it (a broken page should say so). */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error("dashboard: the page has no #" + id);
  return node;
}

/** Show or hide with the hidden attribute (no inline style: the CSP forbids it). */
export function show(node, visible) {
  node.hidden = !visible;
}

const n = (x) => Number(x).toLocaleString("en-US");
export { n as num };

/** 1234 -> "1.2 s", 12 -> "12 ms". */
export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(Number(ms))) return "–";
  ms = Number(ms);
  if (ms >= 10000) return (ms / 1000).toFixed(0) + " s";
  if (ms >= 1000) return (ms / 1000).toFixed(1) + " s";
  return Math.round(ms) + " ms";
}

/** Seconds as "42 s", "3 min 5 s", "2 h 4 min". */
export function fmtAge(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
}

/** Bytes as "256 MiB". */
export function fmtBytes(bytes) {
  let v = Number(bytes);
  if (!Number.isFinite(v)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (Number.isInteger(v) ? v : v.toFixed(1)) + " " + units[i];
}

/** An ISO time as local "YYYY-MM-DD HH:MM:SS". */
export function fmtTime(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = (x) => String(x).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

/** Cut long text for one-line displays. */
export function cut(text, max) {
  text = String(text);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
`;
