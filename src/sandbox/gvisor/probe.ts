/**
 * Host check for the gVisor backend: is `runsc` installed, and which build.
 * It does not start a sandbox: runsc's own flags (--ignore-cgroups, --network)
 * depend on the backend's configuration, which that backend will check itself.
 * The backend also runs its in-sandbox launcher with the host's perl (launcher.ts).
 */
import { existsSync } from "node:fs";
import { describeFailure, firstLine, runCommand, whichExecutable, type Probe, type ProbeOutcome } from "../../probe.js";
import { PERL_PATH } from "./launcher.js";

export const INSTALL_RUNSC = "sudo apt-get install runsc (Debian 12+), or see https://gvisor.dev/docs/user_guide/install/";

/** The build in `runsc --version` output: "runsc version release-20231009.0" or Debian's "0.0~20221219.0". */
export function parseRunscVersion(text: string): string | undefined {
  return /runsc version\s+(\S+)/.exec(text)?.[1];
}

/** Classify `runsc --version` output. */
export function judgeRunsc(path: string, versionText: string): ProbeOutcome {
  const version = parseRunscVersion(versionText);
  if (!version) return { status: "warn", detail: `${path} printed no runsc version ("${firstLine(versionText)}")`, fix: `Reinstall gVisor: ${INSTALL_RUNSC}` };
  return { status: "ok", detail: `runsc ${version} at ${path}` };
}

const runscProbe: Probe = {
  id: "gvisor.runsc",
  title: "gVisor (runsc)",
  onError: "warn",
  async run(signal) {
    // The upstream installer puts it in /usr/local/bin, Debian's package in /usr/bin.
    const path = await whichExecutable("runsc", ["/usr/local/bin", "/usr/bin"]);
    if (!path) return { status: "warn", detail: "runsc is not installed: the gVisor backend is unavailable", fix: INSTALL_RUNSC };
    const res = await runCommand(path, ["--version"], { signal });
    if (!res.ok) return { status: "warn", detail: `${path} --version failed: ${describeFailure(res)}`, fix: `Reinstall gVisor: ${INSTALL_RUNSC}` };
    const judged = judgeRunsc(path, res.stdout);
    if (judged.status === "ok" && !existsSync(PERL_PATH)) {
      return { status: "warn", detail: `${judged.detail}, but ${PERL_PATH} is missing (the sandbox's launcher runs on it)`, fix: "sudo apt-get install perl-base" };
    }
    return judged;
  },
};

/** The gVisor checks, in display order. */
export function gvisorProbes(): Probe[] {
  return [runscProbe];
}
