/**
 * Every host check `luminaguard doctor` runs, gathered from the modules they
 * concern, and what their results mean for each backend.
 */
import { runProbes, type Probe, type ProbeResult } from "../probe.js";
import { namespaceProbes } from "./namespace/probe.js";
import { microvmProbes } from "./microvm/probe.js";
import { gvisorProbes } from "./gvisor/probe.js";
import { seccompProbes } from "../policy/seccomp/probe.js";
import { limitsProbes } from "../policy/limits/probe.js";
import { firewallProbes } from "../policy/firewall/probe.js";

/** Which backends and features this host can run, derived from probe results. */
export interface Readiness {
  namespace: boolean;
  /** "kvm": hardware-accelerated; "tcg": QEMU software emulation; false: no usable QEMU. */
  microvm: "kvm" | "tcg" | false;
  gvisor: boolean;
  firewall: boolean;
}

/** Probe ids (or `prefix.` groups) whose failure stops the namespace backend: it needs all of them. */
const NAMESPACE_NEEDS = ["namespace.", "seccomp.filter", "limits."];

/** All probes in display order: the namespace backend and what it needs first, optional features after. */
export function allProbes(): Probe[] {
  return [...namespaceProbes(), ...seccompProbes(), ...limitsProbes(), ...firewallProbes(), ...microvmProbes(), ...gvisorProbes()];
}

/** Run every probe in parallel, each time-boxed; never rejects. */
export function runAllProbes(): Promise<ProbeResult[]> {
  return runProbes(allProbes());
}

function needed(id: string): boolean {
  return NAMESPACE_NEEDS.some((n) => (n.endsWith(".") ? id.startsWith(n) : id === n));
}

/** The first result that keeps the namespace backend from running, if any. */
export function namespaceBlocker(results: ProbeResult[]): ProbeResult | undefined {
  return results.find((r) => needed(r.id) && r.status === "fail");
}

/** What the results allow. A probe that is missing from `results` counts as not ok. */
export function readiness(results: ProbeResult[]): Readiness {
  const ok = (id: string): boolean => results.some((r) => r.id === id && r.status === "ok");
  const namespaceChecked = results.some((r) => r.id === "namespace.userns");
  return {
    namespace: namespaceChecked && namespaceBlocker(results) === undefined,
    // The kvm probe is "ok" only for hardware KVM (VMX/SVM seen); anything else means TCG.
    microvm: ok("microvm.qemu") ? (ok("microvm.kvm") ? "kvm" : "tcg") : false,
    gvisor: ok("gvisor.runsc"),
    firewall: ok("firewall.nft") && ok("firewall.ip") && ok("firewall.netns"),
  };
}
