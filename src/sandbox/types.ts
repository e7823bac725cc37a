/**
 * The contract every isolation backend (namespace, microvm, gvisor) implements.
 * One conformance suite (test/conformance) runs against each, so behaviour must
 * not depend on the backend.
 */
import type { SeccompLevel, SeccompMode } from "../policy/seccomp/profile.js";
import type { NetworkPolicy } from "../policy/firewall/policy.js";
import type { SandboxNetwork } from "./network.js";
import type { SandboxError } from "./errors.js";

export type BackendName = "namespace" | "microvm" | "gvisor";

/** The limits a cgroup enforces for the whole sandbox (all its processes together). */
export interface CgroupLimits {
  /** Memory limit in bytes (RAM; swap is disabled for the sandbox). */
  memoryBytes: number;
  /** Maximum number of processes and threads. */
  pids: number;
  /** CPU quota in cores (0.5 = half a core). */
  cpus: number;
}

/** Resource limits applied to the whole sandbox (all its processes together). */
export interface SandboxLimits extends CgroupLimits {
  /**
   * Size of the sandbox's own scratch disk: /tmp and a fresh /workspace together
   * (not a caller's workspace folder, which stays on the host's disk). See docs/sandbox.md.
   */
  diskBytes: number;
}

/** What a sandbox should look like; validated at the edge by config/schema. */
export interface SandboxSpec {
  backend: BackendName;
  limits: SandboxLimits;
  seccomp: { level: SeccompLevel; mode: SeccompMode };
  /**
   * Network policy: "none" (loopback inside, nothing outside), or an allow-list
   * enforced by the egress firewall (its own network namespace, nftables, proxy).
   */
  network: NetworkPolicy;
  /** Host folder mounted read-write at /workspace; a fresh temp folder when absent. */
  workspace?: string | undefined;
  /** Maximum size of one file read or written through `Sandbox.files`. */
  maxFileBytes: number;
  /**
   * Host folders or files shown read-only inside the sandbox (an MCP server's
   * code, a data set). Namespace and gVisor only: a micro-VM cannot see host paths.
   */
  mounts?: SandboxMount[] | undefined;
}

/** One read-only host path inside the sandbox. */
export interface SandboxMount {
  /** Absolute host path; must exist and be reachable by the sandbox user. */
  source: string;
  /** Absolute path inside the sandbox (not /, /workspace, /tmp, /proc, /dev or under them). */
  target: string;
}

export interface ExecOptions {
  /** Bytes written to the process's stdin, after which stdin is closed. Omit to keep stdin open for `write()`. */
  stdin?: string | Uint8Array;
  /** Environment of the process; nothing is inherited from the host. */
  env?: Record<string, string>;
  /** Working directory inside the sandbox (default /workspace). */
  cwd?: string;
  /** Kill the whole process tree after this many milliseconds. */
  timeoutMs?: number;
  /** Kill the whole process tree when this signal aborts. */
  signal?: AbortSignal;
}

export interface ExecResult {
  /** Exit code, or null when the process ended by a signal. */
  exitCode: number | null;
  /** Signal name ("SIGKILL"), or null on a normal exit. */
  signal: NodeJS.Signals | null;
  durationMs: number;
  /**
   * True when the sandbox's bounded scratch disk (/tmp and its own /workspace) was
   * full as the command ended, so its writes likely failed with ENOSPC. A state,
   * not an event counted by the kernel like an OOM kill, so it is a flag on the
   * result and never turns a result into an error. Absent when not full.
   */
  diskFull?: true;
}

/** A running process inside a sandbox. */
export interface ExecHandle {
  readonly stdout: AsyncIterable<Uint8Array>;
  readonly stderr: AsyncIterable<Uint8Array>;
  /** Write to the process's stdin. */
  write(data: string | Uint8Array): Promise<void>;
  /** Close the process's stdin (EOF). */
  closeStdin(): void;
  /** Send a signal to the whole process tree. */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Resolves when the process tree has ended. Rejects with a SandboxError when it
   * ended because of the runtime: E_EXEC_TIMEOUT, E_EXEC_ABORTED, E_OOM,
   * E_PIDS_LIMIT (each carries the ExecResult in `details.result`).
   */
  wait(): Promise<ExecResult>;
}

export interface FileEntry {
  name: string;
  type: "file" | "dir" | "symlink" | "other";
  size: number;
}

/** File access inside the sandbox's writable areas (/workspace and /tmp). */
export interface SandboxFiles {
  read(path: string): Promise<Uint8Array>;
  write(path: string, data: string | Uint8Array): Promise<void>;
  list(path: string): Promise<FileEntry[]>;
  remove(path: string, opts?: { recursive?: boolean }): Promise<void>;
}

export interface Sandbox {
  readonly id: string;
  readonly backend: BackendName;
  readonly spec: SandboxSpec;
  exec(argv: string[], opts?: ExecOptions): ExecHandle;
  readonly files: SandboxFiles;
  /** The sandbox's network when its policy is not "none": live policy updates, rules, counters. */
  readonly network: Pick<SandboxNetwork, "update" | "rules" | "stats"> | undefined;
  /** Kill everything inside and free every host resource. Safe to call twice. */
  destroy(): Promise<void>;
  readonly destroyed: boolean;
  /**
   * Set when the sandbox broke on its own (its VM exited, its guest agent went
   * silent or restarted): every call now fails with this error, and destroy()
   * still frees it. A pool never hands out a broken sandbox.
   */
  readonly broken?: SandboxError | undefined;
}

export interface Backend {
  readonly name: BackendName;
  /** Throws a SandboxError with a fix when this host cannot run the backend. */
  check(): Promise<void>;
  create(spec: SandboxSpec): Promise<Sandbox>;
  /** Stop the backend's shared helpers (network proxy, ...) once its sandboxes are destroyed. */
  close?(): Promise<void>;
}
