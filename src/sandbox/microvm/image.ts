/**
 * The micro-VM guest images on this host: find, list and remove them, read their
 * manifests, and make sure the image for the current inputs exists (`ensureImage`
 * runs images/build.sh when it does not).
 *
 * An image is a folder `<imagesDir>/<name>-<hash12>/` holding vmlinuz, initrd,
 * rootfs.ext4 and manifest.json. The hash covers every input (packages, builder,
 * init scripts, agent bundle, helper source), so "is the image current?" is "does
 * the folder for today's hash exist?". build.sh alone computes that hash
 * (`--print-key`), so the shell and TypeScript can never disagree about it.
 * build.sh writes the folder atomically (rename), so a folder with a manifest is complete.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as z from "zod/mini";
import { imagesDir as defaultImagesDir } from "../../config/paths.js";
import { SandboxError } from "../errors.js";

/** The image name used when none is given (also the config default `microvm.image`). */
export const DEFAULT_IMAGE_NAME = "default";

const manifestSchema = z.object({
  name: z.string(),
  hash: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
  id: z.string(),
  createdAt: z.string(),
  arch: z.string(),
  baseKey: z.string(),
  kernelRelease: z.string(),
  /** The kernel command line the image expects (console, panic handling, quiet); the VM launcher adds TCG timing parameters. */
  kernelCmdline: z.string(),
  files: z.object({ kernel: z.string(), initrd: z.string(), rootfs: z.string() }),
  rootfsFormat: z.string(),
  /** The virtio-serial port name the agent listens on. */
  agentPort: z.string(),
  agentSha256: z.string(),
  helperSha256: z.string(),
  initrdModules: z.array(z.string()),
  packages: z.array(z.object({ name: z.string(), version: z.string() })),
  sizes: z.object({ kernel: z.number(), initrd: z.number(), rootfs: z.number(), rootfsAllocated: z.number() }),
});

/** What manifest.json says about an image. */
export type ImageManifest = z.infer<typeof manifestSchema>;

/** A built image: its folder, its three boot files and its manifest. */
export interface GuestImage {
  dir: string;
  kernel: string;
  initrd: string;
  rootfs: string;
  manifest: ImageManifest;
}

/** Image folders are `<name>-<12 hex digits>`; anything else in imagesDir (.cache, .lock, .tmp-*) is not an image. */
const IMAGE_DIR_RE = /^([a-z0-9][a-z0-9-]{0,40})-([0-9a-f]{12})$/;

/** Parse a manifest's text; throws E_IMAGE_MISSING (an unreadable manifest means an unusable image). */
export function parseManifest(text: string, where: string): ImageManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SandboxError("E_IMAGE_MISSING", `${where} is not valid JSON; remove the image (luminaguard image rm) and build it again (luminaguard image build).`, { cause: err });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SandboxError("E_IMAGE_MISSING", `${where} is not a guest image manifest (${issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid"}); remove the image (luminaguard image rm) and build it again (luminaguard image build).`, { details: { where } });
  }
  return parsed.data;
}

/** Read and check the image in `dir`: a valid manifest and the three files it names. */
export async function readImage(dir: string): Promise<GuestImage> {
  const where = join(dir, "manifest.json");
  let text: string;
  try {
    text = await readFile(where, "utf8");
  } catch (err) {
    throw new SandboxError("E_IMAGE_MISSING", `no guest image in ${dir} (${(err as NodeJS.ErrnoException).code ?? "unreadable"}); build one with: luminaguard image build`, { cause: err, details: { dir } });
  }
  const manifest = parseManifest(text, where);
  const image = { dir, kernel: join(dir, manifest.files.kernel), initrd: join(dir, manifest.files.initrd), rootfs: join(dir, manifest.files.rootfs), manifest };
  for (const file of [image.kernel, image.initrd, image.rootfs]) {
    if (!existsSync(file)) throw new SandboxError("E_IMAGE_MISSING", `the guest image in ${dir} lacks ${file}; remove it (luminaguard image rm ${manifest.id}) and build again (luminaguard image build).`, { details: { dir, file } });
  }
  return image;
}

/** One row of `listImages`: a usable image, or a folder that looks like one but is broken. */
export type ImageEntry = { id: string; dir: string; image: GuestImage } | { id: string; dir: string; error: SandboxError };

/** Every image folder in `dir` (default: imagesDir()), newest first; broken ones carry their error. */
export async function listImages(dir: string = defaultImagesDir()): Promise<ImageEntry[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [] as string[];
    throw new SandboxError("E_IMAGE_MISSING", `cannot read the images folder ${dir}: ${err.message}`, { cause: err });
  });
  const entries = await Promise.all(
    names.filter((n) => IMAGE_DIR_RE.test(n)).map(async (id): Promise<ImageEntry & { mtimeMs: number }> => {
      const path = join(dir, id);
      const mtimeMs = (await stat(path).catch(() => undefined))?.mtimeMs ?? 0;
      try {
        return { id, dir: path, image: await readImage(path), mtimeMs };
      } catch (err) {
        return { id, dir: path, error: err as SandboxError, mtimeMs };
      }
    }),
  );
  const created = (e: ImageEntry & { mtimeMs: number }): number => ("image" in e ? Date.parse(e.image.manifest.createdAt) || e.mtimeMs : e.mtimeMs);
  return entries
    .sort((a, b) => created(b) - created(a) || b.id.localeCompare(a.id))
    .map(({ mtimeMs: _m, ...e }) => e);
}

/**
 * The image folders a user's reference means: an exact id (`default-1a2b3c4d5e6f`),
 * a name (every image of that name), or a hash prefix of at least 4 hex digits.
 */
export function matchImages(entries: ImageEntry[], ref: string): ImageEntry[] {
  const exact = entries.filter((e) => e.id === ref);
  if (exact.length) return exact;
  const byName = entries.filter((e) => IMAGE_DIR_RE.exec(e.id)?.[1] === ref);
  if (byName.length) return byName;
  if (/^[0-9a-f]{4,64}$/.test(ref)) {
    return entries.filter((e) => ("image" in e ? e.image.manifest.hash : (IMAGE_DIR_RE.exec(e.id)?.[2] ?? "")).startsWith(ref));
  }
  return [];
}

/**
 * Remove the images `ref` names (see matchImages); returns their ids. Each folder is
 * first renamed to a `.tmp-` name, so no reader ever sees half an image (builders
 * sweep `.tmp-` leftovers). A VM still running from a removed image keeps its open files.
 */
export async function removeImages(ref: string, dir: string = defaultImagesDir()): Promise<string[]> {
  const matches = matchImages(await listImages(dir), ref);
  if (matches.length === 0) {
    throw new SandboxError("E_IMAGE_MISSING", `no guest image matches "${ref}" in ${dir}; see: luminaguard image list`, { details: { ref, dir } });
  }
  for (const m of matches) {
    const doomed = join(dir, `.tmp-rm-${m.id}-${process.pid}`);
    await rename(m.dir, doomed);
    await rm(doomed, { recursive: true, force: true, maxRetries: 3 });
  }
  return matches.map((m) => m.id);
}

/** Where images/build.sh is: found by walking up from this module (src/…, dist/…, or a bundle chunk). */
export function findBuilder(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, "images", "build.sh");
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) break;
  }
  throw new SandboxError("E_IMAGE_MISSING", `images/build.sh was not found above ${from}; the guest image is built from a LuminaGuard source checkout (git clone, then make build).`);
}

/** Inputs of a build; every path defaults to the checkout's own (dist/guest/agent.mjs, images/guest/lg-guest-helper.c). */
export interface ImageInputs {
  /** Image name (default "default"). */
  name?: string;
  /** The guest agent bundle. */
  agent?: string;
  /** The C source of the guest helper. */
  helperSrc?: string;
  /** Where images go (default imagesDir()). */
  imagesDir?: string;
  /** Download and base-layer cache (default `<imagesDir>/.cache`). */
  cacheDir?: string;
  /** images/build.sh (default: found next to this checkout). */
  builder?: string;
}

export interface EnsureImageOptions extends ImageInputs {
  /** Rebuild the final layer even when the image exists. */
  force?: boolean;
  /** Also re-resolve Debian package versions and rebuild the base layer. */
  refresh?: boolean;
  /** Build when missing (default true); false throws E_IMAGE_MISSING instead. */
  build?: boolean;
  /** Each progress line of the build (stderr of build.sh). */
  onProgress?: (line: string) => void;
  signal?: AbortSignal;
}

function builderArgs(o: ImageInputs): string[] {
  const args: string[] = [];
  if (o.name !== undefined) args.push("--name", o.name);
  if (o.agent !== undefined) args.push("--agent", o.agent);
  if (o.helperSrc !== undefined) args.push("--helper-src", o.helperSrc);
  args.push("--images-dir", o.imagesDir ?? defaultImagesDir());
  if (o.cacheDir !== undefined) args.push("--cache-dir", o.cacheDir);
  return args;
}

interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderrTail: string[] }

/** Run build.sh; stderr lines go to onProgress as they come, and the last 30 are kept for errors. */
function runBuilder(builder: string, args: string[], opts: { onProgress?: (line: string) => void; signal?: AbortSignal }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [builder, ...args], { stdio: ["ignore", "pipe", "pipe"], signal: opts.signal, killSignal: "SIGTERM" });
    let stdout = "";
    let partial = "";
    const tail: string[] = [];
    const line = (l: string): void => {
      tail.push(l);
      if (tail.length > 30) tail.shift();
      opts.onProgress?.(l);
    };
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      const parts = (partial + d).split("\n");
      partial = parts.pop() ?? "";
      for (const p of parts) line(p);
    });
    child.on("error", (err) => {
      if (err.name === "AbortError") reject(new SandboxError("E_IMAGE_BUILD", "the guest image build was aborted", { cause: err }));
      else reject(new SandboxError("E_IMAGE_BUILD", `could not run ${builder}: ${err.message}`, { cause: err }));
    });
    child.on("close", (code, signal) => {
      if (partial) line(partial);
      resolve({ code, signal, stdout, stderrTail: tail });
    });
  });
}

/** The folder name (`<name>-<hash12>`) of the image the current inputs make; needs no root. */
export async function currentImageId(o: ImageInputs = {}): Promise<string> {
  const builder = o.builder ?? findBuilder();
  const r = await runBuilder(builder, [...builderArgs(o), "--print-key"], {});
  const id = r.stdout.trim();
  if (r.code !== 0 || !IMAGE_DIR_RE.test(id)) {
    const why = r.stderrTail.filter((l) => l.trim() !== "").at(-1)?.replace(/^build\.sh: /, "") ?? `exit ${r.code ?? r.signal}`;
    throw new SandboxError("E_IMAGE_MISSING", `cannot tell which guest image the current inputs make: ${why}`, { details: { builder } });
  }
  return id;
}

/**
 * The image for the current inputs, built first when missing (or when `force`).
 * Concurrent callers are safe: build.sh serialises builds with a lock file, and the
 * second one finds the image the first one made.
 */
export async function ensureImage(opts: EnsureImageOptions = {}): Promise<GuestImage> {
  const dir = opts.imagesDir ?? defaultImagesDir();
  const builder = opts.builder ?? findBuilder();
  const inputs = { ...opts, builder, imagesDir: dir };
  if (!opts.force) {
    const id = await currentImageId(inputs);
    if (existsSync(join(dir, id, "manifest.json"))) return readImage(join(dir, id));
    if (opts.build === false) {
      throw new SandboxError("E_IMAGE_MISSING", `the guest image ${id} is not built yet; build it with: sudo ./bin/luminaguard image build (it downloads Debian packages once, then takes seconds)`, { details: { id, dir } });
    }
  }
  if (process.getuid?.() !== 0) {
    throw new SandboxError("E_IMAGE_MISSING", "the guest image is not built, and building it needs root (files owned by root inside the image, chroot checks of the guest's binaries); run: sudo ./bin/luminaguard image build", { details: { dir } });
  }
  const args = builderArgs(inputs);
  if (opts.force) args.push("--force");
  if (opts.refresh) args.push("--refresh");
  const r = await runBuilder(builder, args, { onProgress: opts.onProgress, signal: opts.signal });
  const built = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || built === "") {
    const reason = r.stderrTail.filter((l) => l.startsWith("build.sh: ")).at(-1)?.slice("build.sh: ".length);
    throw new SandboxError(
      "E_IMAGE_BUILD",
      `building the guest image failed (${r.code !== null ? `exit ${r.code}` : `signal ${r.signal}`}): ${reason ?? "see the build output"}. Rerun \`luminaguard image build\` to see the full output.`,
      { details: { builder, output: r.stderrTail.join("\n") } },
    );
  }
  return readImage(built);
}

/** What the VM launcher needs of an image (template.ts's BootImage). */
export interface BootFiles {
  kernel: string;
  initrd: string;
  rootfs: string;
  /** The kernel command line the image expects; the launcher appends TCG timing parameters. */
  cmdline: string;
  hash: string;
}

/** The current image's boot files (built when missing, see ensureImage): what the micro-VM backend boots. */
export async function bootImage(opts: EnsureImageOptions = {}): Promise<BootFiles> {
  const image = await ensureImage(opts);
  return { kernel: image.kernel, initrd: image.initrd, rootfs: image.rootfs, cmdline: image.manifest.kernelCmdline, hash: image.manifest.hash };
}
