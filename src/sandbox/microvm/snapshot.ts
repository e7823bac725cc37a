/**
 * Template and clone primitives: save a running VM as a template, start clones
 * that wait for it, and restore them in milliseconds.
 *
 * The template's RAM is a file in /dev/shm that it maps shared; with QEMU's
 * `x-ignore-shared` capability a migration then carries only device state
 * (~50 KB). A clone maps the same file privately (copy-on-write), so clones
 * share the template's pages until they write, and the file never changes.
 *
 * The device state travels over Unix sockets in the VM's folder, never through
 * `exec:` (QEMU's `-sandbox spawn=deny` kills a QEMU that forks) and never as a
 * file the jailed QEMU could open: we hold the state file, QEMU sees a stream.
 */
import { execFileSync } from "node:child_process";
import { createReadStream, createWriteStream } from "node:fs";
import { chmod, open, rename, rm, stat, unlink } from "node:fs/promises";
import { createServer, connect as netConnect, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { SandboxError } from "../errors.js";
import type { QmpClient, QmpEvent } from "./qmp.js";
import { ownedShmPath, startVm, VM_UID, type StartVmOptions, type VmProcess } from "./vm-process.js";

/** The files of one template: RAM (what clones map) and device state (what restore streams). */
export interface TemplateFiles {
  /** In /dev/shm, named for this process; mapped shared by the template, privately by clones. */
  readonly ramPath: string;
  /** Device state written by saveTemplate. */
  readonly statePath: string;
  readonly memoryMiB: number;
  /** Delete both files. Running clones keep their mapping; new clones need a new template. */
  remove(): Promise<void>;
}

export interface SaveResult {
  /** Size of the device state. */
  stateBytes: number;
  /** `stop` until the state file is complete. */
  totalMs: number;
  /** QEMU's own count: the migration's total-time. */
  qemuMs: number | undefined;
}

export interface RestoreResult {
  /** `migrate-incoming` until QEMU reports the migration completed. */
  migrateMs: number;
  /** `cont` (0 when not resumed). */
  contMs: number;
  totalMs: number;
}

const MIGRATION_TIMEOUT_MS = 30_000;

/**
 * Create the (empty) RAM file and name the state file of a template with guest
 * memory `memoryMiB`. Start the template VM with
 * `ram: { kind: "shared-file", path: files.ramPath }` and the same memoryMiB.
 */
export async function createTemplateFiles(name: string, memoryMiB: number): Promise<TemplateFiles> {
  const ramPath = await ownedShmPath(`${name}.ram`);
  const statePath = await ownedShmPath(`${name}.state`);
  const fh = await open(ramPath, "wx", 0o600).catch((err: unknown) => {
    throw new SandboxError("E_VM_SNAPSHOT", `Could not create template RAM file ${ramPath}: ${(err as Error).message}. Template names must be unique; is /dev/shm mounted and writable?`, { cause: err });
  });
  try {
    await fh.truncate(memoryMiB * 1024 * 1024);
    // The jailed QEMU (template and clones) opens it read-write: see RamBacking "private-file".
    if (process.getuid?.() === 0) await fh.chown(VM_UID, VM_UID);
  } catch (err) {
    await fh.close();
    await unlink(ramPath).catch(() => {});
    throw new SandboxError("E_VM_SNAPSHOT", `Could not size template RAM file ${ramPath} to ${memoryMiB} MiB: ${(err as Error).message}.`, { cause: err });
  }
  await fh.close();
  return {
    ramPath,
    statePath,
    memoryMiB,
    remove: async () => {
      await rm(ramPath, { force: true });
      await rm(statePath, { force: true });
    },
  };
}

/**
 * Stop `vm` and save its device state to `statePath`. The VM must have been
 * started with a "shared-file" RAM (its RAM is the template file already); it
 * stays paused, and may be killed once this resolves.
 */
export async function saveTemplate(vm: VmProcess, statePath: string, opts: { timeoutMs?: number } = {}): Promise<SaveResult> {
  if (vm.config.ram.kind !== "shared-file") {
    throw new SandboxError("E_VM_SNAPSHOT", `VM ${vm.id} keeps its RAM in ${vm.config.ram.kind} memory; a template needs ram: { kind: "shared-file" } (see createTemplateFiles).`);
  }
  const timeoutMs = opts.timeoutMs ?? MIGRATION_TIMEOUT_MS;
  const started = performance.now();
  const socketPath = join(vm.dir, "migrate-out.sock");
  const tmp = `${statePath}.${process.pid}.tmp`;
  let server: Server | undefined;
  try {
    await vm.qmp.execute("stop");
    await setMigrationCapabilities(vm.qmp);
    const received = receiveOne(socketPath, tmp, timeoutMs);
    server = received.server;
    await received.listening;
    // QEMU runs as the VM's uid; the folder (0700, that uid's) already keeps everyone else out.
    await chmod(socketPath, 0o666);
    const done = waitMigration(vm.qmp, timeoutMs);
    await vm.qmp.execute("migrate", { uri: `unix:${socketPath}` });
    const status = await done;
    await received.written;
    await rename(tmp, statePath);
    const { size } = await stat(statePath);
    return { stateBytes: size, totalMs: performance.now() - started, qemuMs: typeof status["total-time"] === "number" ? status["total-time"] : undefined };
  } catch (err) {
    await rm(tmp, { force: true });
    throw snapshotError(err, `Saving VM ${vm.id} as a template failed`, vm);
  } finally {
    server?.close();
    await rm(socketPath, { force: true });
  }
}

/**
 * Start a clone of `template` that waits for restore(): its RAM is a private
 * copy-on-write mapping of the template's RAM file, its vCPUs are stopped, and
 * QEMU listens for the device state. `opts` must give the VM the same devices
 * as the template (cpus, root image, agent, console, network); only the id,
 * limits and tap may differ. `kernel` is ignored (see below).
 */
export async function startIncoming(template: Pick<TemplateFiles, "ramPath" | "memoryMiB">, opts: Omit<StartVmOptions, "ram" | "incoming" | "memoryMiB">): Promise<VmProcess> {
  // The template's RAM already holds the booted kernel: loading kernel and initrd
  // again would only slow the clone's start (measured: 283 → 213 ms with a 134 MB
  // initrd). Neither is part of the migrated state, so the restore does not miss them.
  const { kernel: _booted, ...rest } = opts;
  const vm = await startVm({
    ...rest,
    memoryMiB: template.memoryMiB,
    ram: { kind: "private-file", path: template.ramPath, readOnlyOpen: qemuOpensReadOnly(opts.qemuBinary) },
    incoming: true,
    paused: true,
  });
  try {
    await setMigrationCapabilities(vm.qmp);
  } catch (err) {
    await vm.kill().catch(() => {});
    throw snapshotError(err, `Preparing clone ${vm.id} for a restore failed`, vm);
  }
  return vm;
}

/**
 * Load the template's device state into a clone started by startIncoming, then
 * (unless `resume` is false) let its vCPUs run. The guest continues exactly
 * where the template stopped; reseed its RNG before use (clones share it).
 */
export async function restore(vm: VmProcess, statePath: string, opts: { resume?: boolean; timeoutMs?: number } = {}): Promise<RestoreResult> {
  if (!vm.config.incoming) {
    throw new SandboxError("E_VM_SNAPSHOT", `VM ${vm.id} was not started to receive a snapshot; start it with startIncoming().`);
  }
  const timeoutMs = opts.timeoutMs ?? MIGRATION_TIMEOUT_MS;
  const started = performance.now();
  const socketPath = join(vm.dir, "migrate-in.sock");
  try {
    const done = waitMigration(vm.qmp, timeoutMs);
    await vm.qmp.execute("migrate-incoming", { uri: `unix:${socketPath}` });
    // QEMU hangs up as soon as it has read the end-of-stream section, which can be
    // before our side finishes: its MIGRATION event, not the stream, says whether it worked.
    const sent = sendFile(socketPath, statePath, timeoutMs).then(
      () => undefined,
      (err: unknown) => err,
    );
    try {
      await done;
    } catch (err) {
      const sendErr = await sent;
      throw sendErr === undefined ? err : new SandboxError("E_VM_SNAPSHOT", `${(err as Error).message} (sending the state: ${(sendErr as Error).message})`, { cause: err });
    }
    await sent;
    const migrated = performance.now();
    if (opts.resume ?? true) await vm.qmp.execute("cont");
    const end = performance.now();
    return { migrateMs: migrated - started, contMs: end - migrated, totalMs: end - started };
  } catch (err) {
    throw snapshotError(err, `Restoring clone ${vm.id} from ${statePath} failed`, vm);
  } finally {
    await rm(socketPath, { force: true });
  }
}

/** x-ignore-shared: RAM in a shared file is not sent (clones map it); events: MIGRATION events to wait on. */
async function setMigrationCapabilities(qmp: QmpClient): Promise<void> {
  await qmp.execute("migrate-set-capabilities", {
    capabilities: [
      { capability: "x-ignore-shared", state: true },
      { capability: "events", state: true },
    ],
  });
}

const FINAL = new Set(["completed", "failed", "cancelled"]);

/** Resolve with query-migrate's answer once the migration completed; reject when it failed. Call before starting it. */
function waitMigration(qmp: QmpClient, timeoutMs: number): Promise<Record<string, unknown>> {
  const event = qmp.waitForEvent("MIGRATION", { match: (e: QmpEvent) => FINAL.has(String(e.data.status)), timeoutMs });
  return event.then(async (e) => {
    const info = await qmp.execute<Record<string, unknown>>("query-migrate");
    if (e.data.status !== "completed") {
      const desc = typeof info["error-desc"] === "string" ? info["error-desc"] : `status ${String(e.data.status)}`;
      throw new SandboxError("E_VM_SNAPSHOT", `QEMU reports the migration ${String(e.data.status)}: ${desc}`, { details: { migration: info } });
    }
    return info;
  });
}

/** Accept one connection on `path` and write what it sends to `file`. */
function receiveOne(path: string, file: string, timeoutMs: number): { server: Server; listening: Promise<void>; written: Promise<void> } {
  const server = createServer();
  const listening = new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => resolve());
  });
  const written = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new SandboxError("E_VM_SNAPSHOT", `QEMU did not send the device state within ${timeoutMs} ms.`)), timeoutMs);
    server.once("connection", (conn: Socket) => {
      server.close();
      pipeline(conn, createWriteStream(file, { mode: 0o600 })).then(
        () => {
          clearTimeout(timer);
          resolve();
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  });
  written.catch(() => {}); // awaited only after the migration; a failure surfaces there
  return { server, listening, written };
}

/** Connect to QEMU's incoming socket and send the state file. */
async function sendFile(path: string, file: string, timeoutMs: number): Promise<void> {
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect({ path });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
  const timer = setTimeout(() => socket.destroy(new Error(`sending the device state took longer than ${timeoutMs} ms`)), timeoutMs);
  try {
    await pipeline(createReadStream(file), socket);
  } finally {
    clearTimeout(timer);
  }
}

function snapshotError(err: unknown, what: string, vm: VmProcess): SandboxError {
  if (err instanceof SandboxError && err.code === "E_VM_SNAPSHOT") return err;
  const tail = vm.stderrTail().trim().slice(-1000);
  return new SandboxError("E_VM_SNAPSHOT", `${what}: ${(err as Error).message}${tail ? ` QEMU said: ${tail}` : ""}`, { cause: err });
}

const readOnlyCache = new Map<string, boolean>();

/** QEMU >= 8.2 maps a file privately after opening it read-only (`readonly=on,rom=off`); older QEMU needs it writable. */
function qemuOpensReadOnly(binary: string | undefined): boolean {
  const bin = binary ?? "qemu-system-x86_64";
  let ok = readOnlyCache.get(bin);
  if (ok === undefined) {
    let text = "";
    try {
      text = execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 });
    } catch {
      // unknown version: the option older QEMU understands
    }
    const m = /version\s+(\d+)\.(\d+)/.exec(text);
    ok = m !== null && (Number(m[1]) > 8 || (Number(m[1]) === 8 && Number(m[2]) >= 2));
    readOnlyCache.set(bin, ok);
  }
  return ok;
}
