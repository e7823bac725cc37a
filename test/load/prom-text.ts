/** Reading single samples out of Prometheus' text exposition format (what GET /metrics answers). */

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v) && Object.keys(have).length === Object.keys(labels).length) return Number(m[3]);
  }
  return undefined;
}

/** A gauge's value; throws when the series is missing (a gauge is always exported once it exists). */
export function gauge(text: string, name: string, labels: Record<string, string> = {}): number {
  const v = sample(text, name, labels);
  if (v === undefined) throw new Error(`no ${name}${JSON.stringify(labels)} in /metrics`);
  return v;
}

/** A counter's value; a series not exported yet has counted nothing (prom-client shows a label set once it moved). */
export function counter(text: string, name: string, labels: Record<string, string> = {}): number {
  return sample(text, name, labels) ?? 0;
}
