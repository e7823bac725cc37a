/**
 * Host checks for seccomp: the kernel accepts BPF syscall filters (bwrap
 * --seccomp installs ours), and it knows the actions our profiles return.
 * Log mode needs SECCOMP_RET_LOG ("log", Linux 4.14+).
 */
import { readFile } from "node:fs/promises";
import type { Probe, ProbeOutcome } from "../../probe.js";

/** Where the kernel lists the filter return actions it supports (Linux 4.14+). */
export const ACTIONS_AVAIL_PATH = "/proc/sys/kernel/seccomp/actions_avail";

/** Actions the enforcing profiles return: deny with an errno, kill on the worst calls. */
const REQUIRED_ACTIONS = ["errno", "kill_process", "allow"] as const;

/** The "Seccomp:" mode of /proc/<pid>/status (0 none, 1 strict, 2 filter); undefined when the kernel lacks seccomp. */
export function parseSeccompStatus(status: string): { mode: number; filters?: number } | undefined {
  const mode = /^Seccomp:\s*(\d+)\s*$/m.exec(status);
  if (!mode) return undefined;
  const filters = /^Seccomp_filters:\s*(\d+)\s*$/m.exec(status);
  return { mode: Number(mode[1]), ...(filters ? { filters: Number(filters[1]) } : {}) };
}

/** The action names in actions_avail ("kill_process kill_thread trap errno user_notif trace log allow"). */
export function parseSeccompActions(text: string): string[] {
  return text.split(/\s+/).filter((a) => a !== "");
}

/** Read a /proc file; undefined when it does not exist (kernel feature absent). */
async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Judge filter support from /proc/self/status and actions_avail (undefined = file absent). */
export function judgeSeccompFilter(status: string | undefined, actionsText: string | undefined): ProbeOutcome {
  const st = status === undefined ? undefined : parseSeccompStatus(status);
  if (!st) {
    return { status: "fail", detail: "the kernel has no seccomp support (no Seccomp: line in /proc/self/status)", fix: "Use a kernel built with CONFIG_SECCOMP and CONFIG_SECCOMP_FILTER (every mainstream distribution kernel is)." };
  }
  // Mode 2 means a container runtime already filters us; our filter stacks on top, which is fine.
  const already = st.mode === 2 ? `; this process is already filtered (${st.filters ?? "some"} filter(s), e.g. a container): ours stack on top` : "";
  if (actionsText === undefined) {
    return { status: "warn", detail: `seccomp present but ${ACTIONS_AVAIL_PATH} is missing (kernel older than 4.14?): cannot confirm filter actions${already}`, fix: "Upgrade to Linux 4.14 or later." };
  }
  const actions = parseSeccompActions(actionsText);
  const missing = REQUIRED_ACTIONS.filter((a) => !actions.includes(a));
  if (missing.length > 0) {
    return { status: "fail", detail: `the kernel lacks seccomp action(s) ${missing.join(", ")} (has: ${actions.join(" ")})`, fix: "Upgrade the kernel; sandbox profiles need errno and kill_process." };
  }
  return { status: "ok", detail: `filters supported; actions: ${actions.join(" ")}${already}` };
}

/** Judge whether SECCOMP_RET_LOG is available for log mode. */
export function judgeSeccompLog(actionsText: string | undefined): ProbeOutcome {
  if (actionsText === undefined) {
    return { status: "warn", detail: `${ACTIONS_AVAIL_PATH} is missing, so SECCOMP_RET_LOG (Linux 4.14+) is not available`, fix: "Use seccomp mode \"enforce\", or upgrade to Linux 4.14 or later for mode \"log\"." };
  }
  if (!parseSeccompActions(actionsText).includes("log")) {
    return { status: "warn", detail: "the kernel does not offer SECCOMP_RET_LOG: seccomp mode \"log\" cannot run", fix: "Use seccomp mode \"enforce\", or a kernel with the log action (Linux 4.14+)." };
  }
  return { status: "ok", detail: "SECCOMP_RET_LOG available: mode \"log\" records would-be-denied syscalls to the kernel audit log" };
}

/** The seccomp checks, in display order. */
export function seccompProbes(): Probe[] {
  return [
    {
      id: "seccomp.filter",
      title: "seccomp filters",
      onError: "fail",
      async run() {
        const [status, actions] = await Promise.all([readOptional("/proc/self/status"), readOptional(ACTIONS_AVAIL_PATH)]);
        return judgeSeccompFilter(status, actions);
      },
    },
    {
      id: "seccomp.log",
      title: "seccomp log mode",
      onError: "warn",
      async run() {
        return judgeSeccompLog(await readOptional(ACTIONS_AVAIL_PATH));
      },
    },
  ];
}
