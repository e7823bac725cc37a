/**
 * One micro-VM sandbox: a QEMU process (restored from a template or cold-booted)
 * and the guest agent inside it. Every exec and file call goes through the agent;
 * the VM is the isolation boundary, and inside it each command is confined again
 * (unprivileged uid, bwrap namespaces, our seccomp program), so a guest kernel
 * bug is not the only thing between a command and the agent.
 */
import type { ExecHandle, ExecOptions, FileEntry, Sandbox, SandboxFiles, SandboxSpec } from "../types.js";
import { SandboxError, sandboxDestroyed } from "../errors.js";
import { validateExec } from "../exec-validate.js";
import { DEFAULT_ENV } from "../namespace/bwrap-args.js";
import { resolveSandboxPath } from "../exec-files.js";
import { guestExec } from "../guest-exec.js";
import type { GuestClient } from "../agent-client.js";
import type { VmProcess } from "./vm-process.js";
import type { SandboxNetwork } from "../network.js";
import type { VmNetwork } from "./network.js";
import { AGENT_PORT_DEVICE } from "./qemu-args.js";

/** How long a lost channel waits for QEMU's exit to tell a crash from a silent agent. */
const EXIT_WAIT_MS = 1000;

export interface MicrovmSandboxParts {
  id: string;
  spec: SandboxSpec;
  vm: VmProcess;
  agent: GuestClient;
  /** The firewall's network bridged to the VM (policy not "none"); released after QEMU is gone. */
  network?: VmNetwork | undefined;
  /** Called once the VM is gone (to count, or to free a slot). */
  onDestroyed?(): void;
  /** Called when a command starts; the function it returns when that command ended (the backend's ForegroundGate). */
  onExec?(): () => void;
  /** While commands run, ping the agent this often; one unanswered within `timeoutMs` means it is lost. */
  heartbeat?: { intervalMs: number; timeoutMs: number };
}

/**
 * A command that waits for output sends no requests, so a hung guest would hang
 * its caller for ever: while commands run we ping. Generous, because a loaded
 * TCG host can stall a guest for seconds without anything being wrong.
 */
export const DEFAULT_HEARTBEAT = { intervalMs: 5_000, timeoutMs: 20_000 };

export class MicrovmSandbox implements Sandbox {
  readonly id: string;
  readonly backend = "microvm" as const;
  readonly spec: SandboxSpec;
  readonly files: SandboxFiles;
  readonly network: SandboxNetwork | undefined;
  private readonly running = new Set<ExecHandle>();
  private destroying: Promise<void> | undefined;
  /** Set when QEMU exited on its own: every later failure is explained by it. */
  private crashed: SandboxError | undefined;
  /** Set when the agent stopped answering in a VM that still runs. */
  private lost: SandboxError | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly unwatchPort: () => void;

  constructor(private readonly parts: MicrovmSandboxParts) {
    this.id = parts.id;
    this.spec = parts.spec;
    this.files = this.makeFiles();
    this.network = parts.network?.sandbox;
    void parts.vm.exited.then((end) => {
      if (this.destroying) return;
      this.crashed = new SandboxError("E_VM_CRASHED", `The micro-VM of sandbox ${this.id} stopped unexpectedly (${end.signal ?? `exit code ${end.code}`}); its commands were lost. Lease a new sandbox and retry; \`luminaguard doctor\` checks the host.`, { details: { exit: end } });
      parts.agent.close();
    });
    void parts.agent.lost.then((err) => {
      if (!this.destroying) this.lost ??= err;
    });
    // The agent keeps its port open for its whole life, so the guest closing it means the agent exited or
    // was killed. QEMU says so at once; without this the loss showed only once the guest's init had
    // restarted the agent (its new hello, seconds later under TCG) or, if it never came back, a ping timed out.
    this.unwatchPort = parts.vm.qmp.onEvent((e) => {
      if (e.event !== "VSERPORT_CHANGE" || e.data.id !== AGENT_PORT_DEVICE || e.data.open !== false || this.destroying) return;
      parts.agent.abandon("its virtio-serial port was closed in the guest: the agent exited or was killed, and its commands and confinement with it");
    });
  }

  /** The VM's QEMU process (QMP, pid, console), for diagnostics and tests. */
  get vm(): VmProcess {
    return this.parts.vm;
  }

  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  /**
   * Why this sandbox is unusable though nobody destroyed it: QEMU exited, or the
   * agent went silent or restarted (a new agent has none of the confinement, the
   * spawner or the commands the old one had). The pool then does not hand it out.
   */
  get broken(): SandboxError | undefined {
    return this.crashed ?? this.lost;
  }

  /** Guest processes whose command line contains `text` (the host cannot see inside the VM). */
  async processesMatching(text: string): Promise<number> {
    if (this.destroying || this.crashed) return 0;
    const procs = await this.parts.agent.processes();
    return procs.filter((p) => p.cmdline.includes(text)).length;
  }

  private usable(): void {
    if (this.destroying) throw sandboxDestroyed(this.id);
    if (this.crashed) throw this.crashed;
    if (this.lost) throw this.lost;
  }

  private watch(): void {
    const hb = this.parts.heartbeat ?? DEFAULT_HEARTBEAT;
    this.heartbeat ??= setInterval(() => {
      if (this.running.size === 0 || this.destroying) {
        clearInterval(this.heartbeat);
        this.heartbeat = undefined;
        return;
      }
      // A ping unanswered in time marks the client lost; every running command then ends with E_GUEST_LOST.
      this.parts.agent.ping(hb.timeoutMs).catch(() => {});
    }, hb.intervalMs).unref();
  }

  /**
   * Why the agent channel died: the sandbox was destroyed, the VM crashed, or the
   * agent went silent in a VM that still runs. QEMU's socket closes a moment before
   * its exit is seen, so a loss waits briefly for the exit before blaming the agent.
   */
  private async lostReason(): Promise<SandboxError | undefined> {
    if (this.destroying) return new SandboxError("E_SANDBOX_DESTROYED", `Sandbox ${this.id} was destroyed while the command ran.`);
    if (!this.crashed) await Promise.race([this.parts.vm.exited, new Promise((r) => setTimeout(r, EXIT_WAIT_MS).unref())]);
    // exited's own handler sets `crashed` first (it was registered in the constructor).
    await Promise.resolve();
    return this.crashed; // undefined: the client's own E_GUEST_LOST stands
  }

  exec(argv: string[], opts: ExecOptions = {}): ExecHandle {
    this.usable();
    validateExec(argv, opts);
    const proc = this.parts.agent.exec(argv, {
      env: { ...DEFAULT_ENV, ...this.network?.env(), ...opts.env },
      cwd: opts.cwd ?? "/workspace",
      stdin: true,
    });
    const ended = this.parts.onExec?.();
    const handle = guestExec(proc, {
      stdin: opts.stdin,
      timeoutMs: opts.timeoutMs,
      signal: opts.signal,
      limits: this.spec.limits,
      lostReason: () => this.lostReason(),
      onDone: () => {
        ended?.();
        this.running.delete(handle);
      },
    });
    this.running.add(handle);
    this.watch();
    return handle;
  }

  private makeFiles(): SandboxFiles {
    const max = this.spec.maxFileBytes;
    const call = async <T>(fn: () => Promise<T>): Promise<T> => {
      this.usable();
      try {
        return await fn();
      } catch (err) {
        if (err instanceof SandboxError && err.code !== "E_GUEST_LOST") throw err;
        throw (await this.lostReason()) ?? err;
      }
    };
    return {
      // async: a bad path rejects like every other failure, it does not throw.
      read: async (path) => {
        const abs = resolveSandboxPath(path);
        return call(() => this.parts.agent.readFile(abs, max));
      },
      write: async (path, data) => {
        const abs = resolveSandboxPath(path);
        const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
        if (bytes.byteLength > max) {
          throw new SandboxError("E_FILE_TOO_LARGE", `Writing ${path}: ${bytes.byteLength} bytes is over the sandbox's file size limit of ${max} bytes (sandbox.maxFileBytes).`, { details: { path, limit: max } });
        }
        return call(() => this.parts.agent.writeFile(abs, bytes, max));
      },
      list: async (path): Promise<FileEntry[]> => {
        const abs = resolveSandboxPath(path, { allowRoot: true });
        return call(() => this.parts.agent.list(abs));
      },
      remove: async (path, opts) => {
        const abs = resolveSandboxPath(path);
        return call(() => this.parts.agent.remove(abs, opts?.recursive ?? false));
      },
    };
  }

  async destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    clearInterval(this.heartbeat);
    this.unwatchPort();
    // The VM takes every guest process with it; the handles learn it from the closed channel.
    this.parts.agent.close();
    try {
      try {
        await this.parts.vm.kill();
      } finally {
        // After QEMU: it holds the tap. A failed kill still left QEMU killed (it is the cleanup that failed).
        await this.parts.network?.release();
      }
    } finally {
      this.parts.onDestroyed?.();
    }
  }
}
