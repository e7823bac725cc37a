/**
 * The firewall's state file: which sandbox namespaces, veths, chains and
 * subnets are ours and which process owns them. Sweep trusts only what is both
 * named with our prefix and listed here, so it never removes anything else.
 *
 * Several LuminaGuard processes (a daemon, a CLI, test workers) share one file.
 * Updates take a lock file (O_EXCL, holding the owner's pid and start time, so a
 * crashed holder's lock is recognised and broken) and replace the file with a
 * rename, so a reader never sees half a file.
 */
import { mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, closeSync, writeSync, statSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseProcStatStartTime } from "../limits/parse.js";
import { FirewallError } from "./errors.js";

/** A process, told apart from a later one with the same pid by its start time. */
export interface Owner {
  pid: number;
  startTime: number;
}

/** One networked sandbox, recorded before any of its kernel objects exist. */
export interface LeaseRecord {
  sandboxId: string;
  /**
   * For people reading the file: lg-<short>, lgh<short>, sb_<short>. Sweep
   * derives names from the key instead, so an edited file cannot point it at
   * anything that is not named like ours.
   */
  netns?: string;
  veth?: string;
  chain?: string;
  /** The /30 it uses, e.g. "10.203.0.4/30". */
  subnet: string;
  owner: Owner;
  createdAt: string;
}

/** net.ipv4 settings as they were before the first sandbox turned forwarding on. */
export interface SavedForwarding {
  ipForward: string;
  acceptRedirects: string;
}

export interface FirewallState {
  version: 1;
  /** Where the next subnet search starts (see allocateSubnet). */
  nextSubnet: number;
  /** Present while LuminaGuard has forwarding turned on; restored when the last lease goes. */
  forwarding?: SavedForwarding;
  /** Keyed by the sandbox's short name (the hex in lg-<short>, lgh<short>, sb_<short>). */
  leases: Record<string, LeaseRecord>;
}

const LOCK_WAIT_MS = 10_000;
/** A lock file without a readable owner (a crash between create and write) counts as stale after this. */
const LOCK_STALE_MS = 5_000;

export function emptyState(): FirewallState {
  return { version: 1, nextSubnet: 0, leases: {} };
}

/** Parse the file's text; a missing, empty or foreign file is treated as empty state. */
export function parseState(text: string | undefined): FirewallState {
  if (!text) return emptyState();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return emptyState();
  }
  if (typeof raw !== "object" || raw === null || (raw as { version?: unknown }).version !== 1) return emptyState();
  const r = raw as Partial<FirewallState>;
  const leases: Record<string, LeaseRecord> = {};
  for (const [short, l] of Object.entries(r.leases ?? {})) {
    if (/^[0-9a-f]{8}$/.test(short) && typeof l?.subnet === "string" && typeof l.owner?.pid === "number") leases[short] = l;
  }
  const state: FirewallState = { version: 1, nextSubnet: Number.isInteger(r.nextSubnet) ? r.nextSubnet! : 0, leases };
  if (typeof r.forwarding?.ipForward === "string" && typeof r.forwarding.acceptRedirects === "string") state.forwarding = r.forwarding;
  return state;
}

/** The start time of a process from /proc (undefined when it is gone). */
export function startTimeOf(pid: number | "self"): number | undefined {
  try {
    return parseProcStatStartTime(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;

/** This process as an owner. */
export function ownOwner(): Owner {
  self ??= { pid: process.pid, startTime: startTimeOf("self") ?? 0 };
  return self;
}

/** True while that process still runs (same pid and same start time). */
export function ownerAlive(o: Owner): boolean {
  return startTimeOf(o.pid) === o.startTime;
}

/** Reads and updates the state file under the lock. */
export class StateStore {
  readonly file: string;
  private readonly lockFile: string;

  constructor(readonly dir: string) {
    this.file = join(dir, "state.json");
    this.lockFile = join(dir, "state.lock");
  }

  /** The current state, without the lock (for display; may be stale a moment later). */
  read(): FirewallState {
    try {
      return parseState(readFileSync(this.file, "utf8"));
    } catch {
      return emptyState();
    }
  }

  /**
   * Run `fn` on the state under the lock and write back what it leaves. `fn` may
   * be async (sweep holds the lock while it removes things); attach's is sync,
   * so the lock is held for well under a millisecond.
   */
  async update<T>(fn: (state: FirewallState) => T | Promise<T>): Promise<T> {
    await this.lock();
    try {
      const state = this.read();
      const result = await fn(state);
      this.write(state);
      return result;
    } finally {
      this.unlock();
    }
  }

  private write(state: FirewallState): void {
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2) + "\n", { mode: 0o600 });
    renameSync(tmp, this.file);
  }

  private async lock(): Promise<void> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    let delay = 1;
    for (;;) {
      const holder = this.tryLock();
      if (holder === undefined) return;
      if (Date.now() > deadline) {
        throw new FirewallError(
          "E_FIREWALL_NETNS",
          `The firewall state lock ${this.lockFile} has been held by process ${holder} for over ${LOCK_WAIT_MS / 1000} s. If that process hangs, stop it; a lock of a dead process is removed automatically.`,
          { details: { lockFile: this.lockFile, holder } },
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 20);
    }
  }

  /** Take the lock; returns the holder's description when someone else has it. */
  private tryLock(): string | undefined {
    this.ensureDir();
    const me = ownOwner();
    let fd: number;
    try {
      fd = openSync(this.lockFile, "wx", 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw this.stateError(err);
      return this.breakStaleLock();
    }
    try {
      writeSync(fd, `${me.pid} ${me.startTime}\n`);
    } finally {
      closeSync(fd);
    }
    return undefined;
  }

  /** Remove the lock when its holder is dead; returns the live holder's description otherwise. */
  private breakStaleLock(): string | undefined {
    let text: string;
    try {
      text = readFileSync(this.lockFile, "utf8");
    } catch {
      return "unknown (lock vanished; retrying)";
    }
    const [pid, startTime] = text.trim().split(" ").map(Number);
    const readable = Number.isInteger(pid) && Number.isInteger(startTime);
    const stale = readable ? !ownerAlive({ pid: pid!, startTime: startTime! }) : Date.now() - this.lockMtime() > LOCK_STALE_MS;
    if (!stale) return readable ? `pid ${pid}` : "unknown";
    try {
      unlinkSync(this.lockFile);
    } catch {
      // another process broke it first
    }
    return "a dead process (lock removed; retrying)";
  }

  private lockMtime(): number {
    try {
      return statSync(this.lockFile).mtimeMs;
    } catch {
      return 0;
    }
  }

  private unlock(): void {
    try {
      unlinkSync(this.lockFile);
    } catch {
      // already gone: nothing to release
    }
  }

  private ensureDir(): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw this.stateError(err);
    }
  }

  private stateError(err: unknown): FirewallError {
    return new FirewallError("E_FIREWALL_NETNS", `Cannot use the firewall state directory ${this.dir}: ${(err as Error).message}. Check that it is writable by LuminaGuard (root).`, { cause: err });
  }
}
