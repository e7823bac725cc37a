/**
 * Host checks for the namespace backend: bubblewrap is installed and new enough,
 * user namespaces really work (we run bwrap exactly as the backend's own check
 * does), setpriv is there to drop root before bwrap runs, and a sandbox's
 * size-limited tmpfs (limits.disk) can be mounted.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NamespaceHost, findExecutable, probeUserNamespaces } from "./host.js";
import { SandboxError } from "../errors.js";
import { mountScratchDisk } from "../scratch-disk.js";
import { compareVersions, describeFailure, isRoot, messageOf, parseVersion, runCommand, whichExecutable, type Probe, type ProbeOutcome } from "../../probe.js";

/** bwrap-args passes --disable-userns unconditionally, which bubblewrap added in 0.8.0. */
export const MIN_BWRAP_VERSION = "0.8.0";

const INSTALL_BWRAP = "On Debian/Ubuntu: sudo apt-get install bubblewrap (Debian 12 and Ubuntu 24.04 ship 0.8 or later).";

/** Classify `bwrap --version` output against the minimum version the backend needs. */
export function judgeBwrapVersion(output: string, path: string): ProbeOutcome {
  const version = parseVersion(output);
  if (version === undefined) {
    return { status: "warn", detail: `${path}: could not read a version from "${output.trim()}"`, fix: `Make sure ${path} is bubblewrap ${MIN_BWRAP_VERSION} or later.` };
  }
  if (compareVersions(version, MIN_BWRAP_VERSION) < 0) {
    return { status: "fail", detail: `bubblewrap ${version} at ${path} is older than ${MIN_BWRAP_VERSION} (sandboxes use --disable-userns)`, fix: `Upgrade bubblewrap to ${MIN_BWRAP_VERSION} or later. ${INSTALL_BWRAP}` };
  }
  return { status: "ok", detail: `bubblewrap ${version} at ${path}` };
}

const bwrapProbe: Probe = {
  id: "namespace.bwrap",
  title: "bubblewrap",
  onError: "fail",
  async run(signal) {
    let path: string;
    try {
      // The same lookup the backend uses, so doctor and the backend agree on which bwrap runs.
      path = findExecutable("bwrap");
    } catch {
      return { status: "fail", detail: "bwrap is not installed", fix: INSTALL_BWRAP };
    }
    const res = await runCommand(path, ["--version"], { signal });
    if (!res.ok) return { status: "fail", detail: `${path} --version failed: ${describeFailure(res)}`, fix: `Reinstall bubblewrap. ${INSTALL_BWRAP}` };
    return judgeBwrapVersion(res.stdout, path);
  },
};

const userNamespacesProbe: Probe = {
  id: "namespace.userns",
  title: "user namespaces",
  onError: "fail",
  async run() {
    let host: NamespaceHost;
    try {
      host = new NamespaceHost();
    } catch (err) {
      if (err instanceof SandboxError) return { status: "fail", detail: "cannot prepare the namespace host", fix: err.message };
      return { status: "fail", detail: `cannot prepare the namespace host: ${messageOf(err)}`, fix: "Check that LUMINAGUARD_RUNTIME_DIR (or the temp folder) is writable." };
    }
    try {
      // Runs bwrap with --unshare-user/pid/net as the sandbox user: the only honest test (never cached here).
      await probeUserNamespaces(host);
    } catch (err) {
      if (err instanceof SandboxError && err.code === "E_USERNS_BLOCKED") {
        return { status: "fail", detail: "unprivileged user namespaces are blocked on this host", fix: err.message };
      }
      // userNamespaceError's other message ends "Run `luminaguard doctor`": pointless here, so keep only bwrap's words.
      const said = messageOf(err).replace(/\s*Run `luminaguard doctor` for details\.\s*$/, "");
      return { status: "fail", detail: said, fix: "Check the bubblewrap and setpriv rows above; run the same bwrap command by hand to see the full error." };
    }
    const as = host.dropPrivilegesArgv().length > 0 ? ` as uid ${host.identity().uid}` : "";
    return { status: "ok", detail: `bwrap started a sandbox with new user, pid and net namespaces${as}` };
  },
};

const setprivProbe: Probe = {
  id: "namespace.setpriv",
  title: "setpriv (drop root)",
  onError: "fail",
  async run(signal) {
    if (!isRoot()) return { status: "skip", detail: "not running as root: nothing to drop" };
    // dropPrivilegesArgv runs plain "setpriv", resolved through PATH.
    const path = await whichExecutable("setpriv");
    if (!path) {
      return { status: "fail", detail: "setpriv is not installed; as root, sandboxes start through it to become the sandbox user", fix: "sudo apt-get install util-linux (setpriv is part of it)." };
    }
    const res = await runCommand(path, ["--version"], { signal });
    const version = parseVersion(res.stdout);
    return { status: "ok", detail: `${path}${version ? ` (util-linux ${version})` : ""}` };
  },
};

const diskProbe: Probe = {
  id: "namespace.disk",
  title: "disk limit (tmpfs)",
  onError: "fail",
  async run() {
    if (!isRoot()) {
      return { status: "warn", detail: "not running as root: limits.disk is not enforced, sandboxes write /tmp and /workspace to the host's disk", fix: "Run LuminaGuard as root: each sandbox then gets a size-limited tmpfs for /tmp and /workspace." };
    }
    // Mount and unmount one, as create() does: the only honest test (a container may lack CAP_SYS_ADMIN).
    const dir = await mkdtemp(join(tmpdir(), "lg-disk-probe-"));
    try {
      const disk = await mountScratchDisk(dir, "probe", 1024 * 1024);
      await disk.release();
      return { status: "ok", detail: "a size-limited tmpfs per sandbox bounds /tmp and /workspace (limits.disk)" };
    } catch (err) {
      return { status: "fail", detail: `cannot mount a tmpfs for a sandbox's /tmp and /workspace: ${messageOf(err)}`, fix: "Grant LuminaGuard CAP_SYS_ADMIN (in a container: --cap-add SYS_ADMIN); sandboxes cannot start without their disk." };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

/** The namespace backend's checks, in display order. */
export function namespaceProbes(): Probe[] {
  return [bwrapProbe, userNamespacesProbe, setprivProbe, diskProbe];
}
