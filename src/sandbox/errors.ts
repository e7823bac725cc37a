import { LuminaError } from "../errors.js";
import { formatSize } from "../config/size.js";

/** Stable codes of sandbox errors. */
export type SandboxErrorCode =
  | "E_BACKEND_UNAVAILABLE" // the host cannot run this backend (missing tool, blocked namespaces)
  | "E_USERNS_BLOCKED" // unprivileged user namespaces are disabled on this host
  | "E_SANDBOX_START" // the sandbox process failed to start
  | "E_WORKSPACE" // the workspace folder given for the sandbox is missing or unusable
  | "E_MOUNT" // a read-only mount in the spec is missing, unreachable, or not allowed on this backend
  | "E_SANDBOX_DESTROYED" // the sandbox was used after destroy()
  | "E_EXEC_INVALID" // exec was called with a bad argv, env or cwd
  | "E_EXEC_TIMEOUT" // the command ran longer than its timeout and was killed
  | "E_EXEC_ABORTED" // the caller aborted the command
  | "E_OOM" // the sandbox hit its memory limit and the kernel killed a process
  | "E_PIDS_LIMIT" // the sandbox hit its process limit
  | "E_DISK_FULL" // the sandbox's /tmp and /workspace are full (limits.disk)
  | "E_DISK_SETUP" // the sandbox's size-limited scratch disk could not be mounted or unmounted
  | "E_CGROUP" // cgroup limits could not be set up
  | "E_SANDBOX_CRASHED" // the sandbox's runtime (gVisor's sentry) died; destroy it and use a new sandbox
  | "E_FILE_TOO_LARGE" // a file read/write exceeded the size limit
  | "E_FILE_PATH" // a file path escapes the sandbox's writable areas
  | "E_FILE_NOT_FOUND" // the file does not exist
  | "E_FILE_IO" // another file error
  | "E_GUEST_LOST" // the guest agent stopped answering; the VM was replaced, retry the call
  | "E_GUEST_PROTOCOL" // the guest agent sent a bad frame or speaks another protocol version
  | "E_VM_CRASHED" // the micro-VM stopped unexpectedly
  | "E_VM_START" // QEMU did not start or its QMP monitor did not answer in time
  | "E_VM_SNAPSHOT" // saving a template or restoring a clone from it failed
  | "E_QMP" // the QMP connection to QEMU broke or spoke something that is not QMP
  | "E_QMP_COMMAND" // QEMU refused a QMP command (details: qmpClass, qmpDesc)
  | "E_QMP_TIMEOUT" // QEMU did not answer a QMP command in time
  | "E_IMAGE_MISSING" // the micro-VM guest image is not built (or is incomplete) and cannot be built here
  | "E_IMAGE_BUILD" // images/build.sh failed to build the guest image
  | "E_POOL_FULL" // the pool and its queue are full
  | "E_POOL_TIMEOUT" // waited too long for a sandbox from the pool
  | "E_POOL_ABORTED" // the caller aborted while waiting for a sandbox from the pool
  | "E_POOL_CLOSED"; // the pool was closed

/** An error from creating, running or destroying a sandbox. */
export class SandboxError extends LuminaError {
  declare readonly code: SandboxErrorCode;

  constructor(code: SandboxErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(code, message, options);
  }
}

/** The error every backend throws when a destroyed sandbox is used. */
export function sandboxDestroyed(id: string): SandboxError {
  return new SandboxError("E_SANDBOX_DESTROYED", `Sandbox ${id} was destroyed; lease a new one for this command.`);
}

/**
 * The sandbox's scratch disk (/tmp and its own /workspace) is full. `limitBytes`
 * is known to the caller of a spec (the CLI); the files API only knows the disk said ENOSPC.
 */
export function diskFullError(limitBytes?: number, details: Record<string, unknown> = {}): SandboxError {
  const size = limitBytes === undefined ? "" : `, ${formatSize(limitBytes)}`;
  return new SandboxError(
    "E_DISK_FULL",
    `The sandbox's disk (/tmp and /workspace together${size}) is full, so writes fail with "No space left on device". Raise --disk (sandbox.limits.disk in the config), or delete files in the sandbox first.`,
    { details: { ...details, ...(limitBytes === undefined ? {} : { limitBytes }) } },
  );
}
