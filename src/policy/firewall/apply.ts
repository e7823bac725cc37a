/**
 * Running nft: a script is one `nft -f -` (one transaction, so it applies
 * completely or not at all), listings come back as text or JSON.
 */
import { FirewallError } from "./errors.js";
import { FAMILY, TABLE } from "./names.js";
import type { CommandRunner, RunResult } from "./runner.js";
import type { Session } from "./session.js";

export class Nft {
  /** `session`: a persistent `nft -i` for changes (the hot path); without it every change starts `nft -f -`. Listings always start their own nft. */
  constructor(
    private readonly runner: CommandRunner,
    readonly path: string,
    private readonly session?: Session,
  ) {}

  /** Apply `script` atomically; E_FIREWALL_RULES with nft's complaint when it refuses. */
  async apply(script: string, context: string): Promise<void> {
    const r = await this.tryApply(script);
    if (r.code !== 0) throw rulesError(context, r.output, script);
  }

  /** Apply `script`; the result instead of an error (for removals that may find things gone already). */
  async tryApply(script: string): Promise<RunResult> {
    if (!this.session) return this.runRaw([{ argv: [this.path, "-f", "-"], input: script }]);
    try {
      const r = await this.session.run(script);
      return { code: r.ok ? 0 : 1, output: r.output };
    } catch (err) {
      throw new FirewallError("E_FIREWALL_NFT", `nft stopped working: ${(err as Error).message}. Check that nftables works (\`nft list tables\`).`, { cause: err });
    }
  }

  /** Several `nft -j <args>` listings; undefined for each that failed (the object does not exist). */
  async json(argsList: string[][]): Promise<(unknown | undefined)[]> {
    // Run apart (and in parallel): one missing object must not hide the others.
    const results = await Promise.all(argsList.map((args) => this.runRaw([{ argv: [this.path, "-j", ...args] }])));
    return results.map((r) => {
      if (r.code !== 0) return undefined;
      try {
        return JSON.parse(r.output.trim().split("\n").find((l) => l.startsWith("{")) ?? "");
      } catch {
        return undefined;
      }
    });
  }

  /** Text listings run one after another in one request (stops at the first failure). */
  text(argsList: string[][]): Promise<RunResult> {
    return this.runRaw(argsList.map((args) => ({ argv: [this.path, ...args] })));
  }

  /** Our whole table as JSON, or undefined when it does not exist. */
  async table(): Promise<unknown | undefined> {
    const [t] = await this.json([["list", "table", FAMILY, TABLE]]);
    return t;
  }

  private async runRaw(steps: { argv: string[]; input?: string }[]): Promise<RunResult> {
    try {
      return await this.runner.run(steps);
    } catch (err) {
      throw new FirewallError("E_FIREWALL_NFT", `Could not run ${this.path}: ${(err as Error).message}. Check that nftables is installed and works (\`nft list tables\`).`, { cause: err });
    }
  }
}

/**
 * nft's first "Error:" line and the command it points at, for a one-line message.
 * nft echoes the input line under the error and marks the culprit with carets;
 * from a joined one-line script (session) only the marked command is kept.
 */
export function nftComplaint(output: string): string {
  const ls = output.split("\n");
  const i = ls.findIndex((l) => l.startsWith("Error:") || l.includes(": Error:"));
  if (i < 0) return ls.find((l) => l.trim() !== "")?.trim() ?? "no output";
  const echoed = ls[i + 1] ?? "";
  const carets = /\^+/.exec(ls[i + 2] ?? "");
  let where = echoed.trim();
  if (carets && echoed.includes("; ")) {
    // The command around the marked part: from the "; " before it to the "; " after it.
    const from = echoed.lastIndexOf("; ", carets.index) + 1;
    const to = echoed.indexOf("; ", carets.index + carets[0].length);
    where = echoed.slice(from, to < 0 ? undefined : to).trim();
  }
  return where ? `${ls[i]!.trim()} (in: ${where})` : ls[i]!.trim();
}

function rulesError(context: string, output: string, script: string): FirewallError {
  return new FirewallError(
    "E_FIREWALL_RULES",
    `nftables refused the rules ${context}: ${nftComplaint(output)}. The firewall needs nftables >= 1.0 and a kernel with nf_tables concatenated-range sets (Linux >= 5.6); if both hold, report this with the details.`,
    { details: { stderr: output, script } },
  );
}
