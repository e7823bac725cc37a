// Guest image bookkeeping (src/sandbox/microvm/image.ts) on temp folders: manifests,
// listing, matching, removal, and the key images/build.sh computes for its inputs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { imagesDir } from "../../src/config/paths.js";
import { hasCode } from "../../src/errors.js";
import { currentImageId, ensureImage, findBuilder, listImages, matchImages, parseManifest, readImage, removeImages, type ImageManifest } from "../../src/sandbox/microvm/image.js";

let root: string;

function manifest(id: string, hash: string, createdAt: string): ImageManifest {
  return {
    name: id.slice(0, -13),
    hash,
    id,
    createdAt,
    arch: "amd64",
    baseKey: "0123456789abcdef",
    kernelRelease: "6.1.0-56-cloud-amd64",
    kernelCmdline: "console=ttyS0 root=/dev/vda rdinit=/init panic=-1",
    files: { kernel: "vmlinuz", initrd: "initrd", rootfs: "rootfs.ext4" },
    rootfsFormat: "ext4",
    agentPort: "lg.agent",
    agentSha256: "a".repeat(64),
    helperSha256: "b".repeat(64),
    initrdModules: ["virtio_ring", "virtio"],
    packages: [{ name: "nodejs", version: "18.20.4" }],
    sizes: { kernel: 3, initrd: 3, rootfs: 3, rootfsAllocated: 3 },
  };
}

/** An image folder as build.sh leaves it (with tiny stand-in files). */
function makeImage(dir: string, name: string, hash: string, createdAt: string, opts: { omit?: string } = {}): string {
  const id = `${name}-${hash.slice(0, 12)}`;
  const path = join(dir, id);
  mkdirSync(path, { recursive: true });
  for (const f of ["vmlinuz", "initrd", "rootfs.ext4"]) if (f !== opts.omit) writeFileSync(join(path, f), "xyz");
  writeFileSync(join(path, "manifest.json"), JSON.stringify(manifest(id, hash, createdAt)));
  return id;
}

const H1 = "1111aaaa2222bbbb".padEnd(64, "0");
const H2 = "3333cccc4444dddd".padEnd(64, "0");
const H3 = "1111aaaa9999eeee".padEnd(64, "0");

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "lg-image-unit-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("manifest parsing", () => {
  it("accepts what build.sh writes", () => {
    const m = manifest("default-1111aaaa2222", H1, "2026-11-25T10:00:00Z");
    expect(parseManifest(JSON.stringify(m), "x")).toEqual(m);
  });

  it("rejects broken JSON and missing fields with E_IMAGE_MISSING and a way out", () => {
    const bad = [() => parseManifest("{", "m.json"), () => parseManifest(JSON.stringify({ ...manifest("a-111111111111", H1, "t"), files: undefined }), "m.json")];
    for (const f of bad) {
      try {
        f();
        expect.unreachable();
      } catch (err) {
        expect(hasCode(err, "E_IMAGE_MISSING")).toBe(true);
        expect((err as Error).message).toMatch(/m\.json.*image rm.*image build/);
      }
    }
    expect(() => parseManifest(JSON.stringify({ ...manifest("a-111111111111", H1, "t"), hash: "short" }), "m.json")).toThrow(/hash/);
  });
});

describe("listing, matching and removal", () => {
  let dir: string;
  beforeAll(() => {
    dir = join(root, "images");
    makeImage(dir, "default", H1, "2026-11-25T10:00:00Z");
    makeImage(dir, "default", H2, "2026-11-25T12:00:00Z");
    makeImage(dir, "other", H3, "2026-11-25T11:00:00Z");
    const broken = makeImage(dir, "default", "9".repeat(64), "2026-11-25T09:00:00Z", { omit: "rootfs.ext4" });
    // A broken image sorts by its folder's time (its manifest may be unreadable).
    utimesSync(join(dir, broken), new Date("2026-11-25T09:00:00Z"), new Date("2026-11-25T09:00:00Z"));
    // Not images: the cache, the lock, a build in progress, a stray file.
    mkdirSync(join(dir, ".cache", "debs"), { recursive: true });
    writeFileSync(join(dir, ".lock"), "");
    mkdirSync(join(dir, ".tmp-default-123456789abc-42"));
    writeFileSync(join(dir, "notes.txt"), "");
  });

  it("lists image folders newest first, flags the broken one, ignores everything else", async () => {
    const entries = await listImages(dir);
    expect(entries.map((e) => e.id)).toEqual(["default-3333cccc4444", "other-1111aaaa9999", "default-1111aaaa2222", "default-999999999999"]);
    const broken = entries[3]!;
    expect("error" in broken && broken.error.code).toBe("E_IMAGE_MISSING");
    expect("error" in broken && broken.error.message).toContain("rootfs.ext4");
    const first = entries[0]!;
    expect("image" in first && first.image.rootfs).toBe(join(dir, "default-3333cccc4444", "rootfs.ext4"));
  });

  it("an images folder that does not exist lists as empty", async () => {
    expect(await listImages(join(root, "nope"))).toEqual([]);
  });

  it("matches by id, by name, and by hash prefix", async () => {
    const entries = await listImages(dir);
    const ids = (ref: string): string[] => matchImages(entries, ref).map((e) => e.id).sort();
    expect(ids("default-1111aaaa2222")).toEqual(["default-1111aaaa2222"]);
    expect(ids("other")).toEqual(["other-1111aaaa9999"]);
    expect(ids("default")).toEqual(["default-1111aaaa2222", "default-3333cccc4444", "default-999999999999"]);
    expect(ids("3333")).toEqual(["default-3333cccc4444"]);
    expect(ids("1111aaaa")).toEqual(["default-1111aaaa2222", "other-1111aaaa9999"]);
    expect(ids("1111aaaa9")).toEqual(["other-1111aaaa9999"]);
    expect(ids("abc")).toEqual([]); // too short to be a hash prefix
    expect(ids("nothing")).toEqual([]);
  });

  it("removes only what the reference names, and says when nothing matches", async () => {
    expect(await removeImages("3333cccc", dir)).toEqual(["default-3333cccc4444"]);
    expect(existsSync(join(dir, "default-3333cccc4444"))).toBe(false);
    expect(readdirSync(dir).filter((n) => n.startsWith(".tmp-rm-"))).toEqual([]);
    expect((await listImages(dir)).map((e) => e.id)).toEqual(["other-1111aaaa9999", "default-1111aaaa2222", "default-999999999999"]);
    await expect(removeImages("nothing", dir)).rejects.toMatchObject({ code: "E_IMAGE_MISSING", message: expect.stringContaining("image list") as unknown });
    expect(existsSync(join(dir, ".cache", "debs"))).toBe(true);
  });

  it("readImage of a folder without a manifest says how to build one", async () => {
    mkdirSync(join(root, "empty"));
    await expect(readImage(join(root, "empty"))).rejects.toMatchObject({ code: "E_IMAGE_MISSING", message: expect.stringContaining("image build") as unknown });
  });

  it("ensureImage({build:false}) finds an existing image and refuses to build a missing one", async () => {
    const inputs = join(root, "inputs-ensure");
    mkdirSync(inputs);
    writeFileSync(join(inputs, "agent.mjs"), "// agent\n");
    writeFileSync(join(inputs, "helper.c"), "int main(void){return 0;}\n");
    const o = { agent: join(inputs, "agent.mjs"), helperSrc: join(inputs, "helper.c"), imagesDir: join(root, "ensure") };
    await expect(ensureImage({ ...o, build: false })).rejects.toMatchObject({ code: "E_IMAGE_MISSING", message: expect.stringContaining("image build") as unknown });
    // The folder of the current key, as a build would leave it.
    const id = await currentImageId(o);
    const hash = id.slice(-12).padEnd(64, "0");
    makeImage(o.imagesDir, "default", hash, "2026-11-25T10:00:00Z");
    const image = await ensureImage({ ...o, build: false });
    expect(image.dir).toBe(join(o.imagesDir, id));
    expect(image.manifest.id).toBe(id);
  });
});

describe("the key of the current inputs (images/build.sh --print-key)", () => {
  let inputs: string;
  beforeAll(() => {
    inputs = join(root, "inputs");
    mkdirSync(inputs);
    writeFileSync(join(inputs, "agent.mjs"), "console.log('v1');\n");
    writeFileSync(join(inputs, "helper.c"), "int main(void) { return 0; }\n");
  });
  const opts = (): { agent: string; helperSrc: string; imagesDir: string } => ({ agent: join(inputs, "agent.mjs"), helperSrc: join(inputs, "helper.c"), imagesDir: join(root, "keyed") });

  it("finds the builder in the checkout", () => {
    expect(findBuilder()).toMatch(/\/images\/build\.sh$/);
  });

  it("is stable for the same inputs and changes with the agent, the helper and the name", async () => {
    const a = await currentImageId(opts());
    expect(a).toMatch(/^default-[0-9a-f]{12}$/);
    expect(await currentImageId(opts())).toBe(a);
    writeFileSync(join(inputs, "agent.mjs"), "console.log('v2');\n");
    const b = await currentImageId(opts());
    expect(b).not.toBe(a);
    writeFileSync(join(inputs, "helper.c"), "int main(void) { return 1; }\n");
    const c = await currentImageId(opts());
    expect(c).not.toBe(b);
    const named = await currentImageId({ ...opts(), name: "ci" });
    expect(named).toBe(`ci-${c.slice(-12)}`);
    // Asking for the key builds nothing.
    expect(existsSync(join(root, "keyed"))).toBe(false);
  });

  it("a missing agent bundle is E_IMAGE_MISSING that says how to make it", async () => {
    await expect(currentImageId({ ...opts(), agent: join(inputs, "nope.mjs") })).rejects.toMatchObject({
      code: "E_IMAGE_MISSING",
      message: expect.stringMatching(/agent bundle is missing.*make build/) as unknown,
    });
  });

  it("the builder refuses a bad image name", () => {
    expect(() => execFileSync("bash", [findBuilder(), "--name", "Bad/Name", "--print-key"], { stdio: "pipe" })).toThrow(/--name must be/);
  });
});

describe("imagesDir()", () => {
  it("follows LUMINAGUARD_IMAGES_DIR, then XDG_CACHE_HOME, then ~/.cache", () => {
    const saved = { a: process.env.LUMINAGUARD_IMAGES_DIR, x: process.env.XDG_CACHE_HOME };
    try {
      process.env.LUMINAGUARD_IMAGES_DIR = "/x/images";
      expect(imagesDir()).toBe("/x/images");
      delete process.env.LUMINAGUARD_IMAGES_DIR;
      process.env.XDG_CACHE_HOME = "/cache";
      expect(imagesDir()).toBe("/cache/luminaguard/images");
      delete process.env.XDG_CACHE_HOME;
      expect(imagesDir()).toMatch(/\/\.cache\/luminaguard\/images$/);
    } finally {
      if (saved.a === undefined) delete process.env.LUMINAGUARD_IMAGES_DIR;
      else process.env.LUMINAGUARD_IMAGES_DIR = saved.a;
      if (saved.x === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = saved.x;
    }
  });
});
