/**
 * Collecting all the garbage a process can, for memory measurements, and a
 * test-only preload that does it in a daemon process from outside
 * (NODE_OPTIONS="--import <this file>", LG_TEST_GC_PROBE=<file>): on SIGUSR2 it
 * collects, then writes process.memoryUsage() with a sequence number to <file>.
 * The heap after a real GC is what a leak grows; without one the number is
 * mostly garbage not yet collected. The product exposes no GC trigger and gets
 * none: this file only exists in the test's NODE_OPTIONS, and sandboxes start
 * with a cleared environment (bwrap --clearenv), so nothing inside them loads it.
 */
import { renameSync, writeFileSync } from "node:fs";
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Full GCs with event-loop turns between them. "last-resort" is V8's
 * memory-reducing full GC: it also shrinks the young generation and hands free
 * pages back, so RSS after it compares across rounds (after a plain gc() RSS
 * tracks how far V8 grew its young generation under load: tens of MB). The turns
 * let FinalizationRegistry callbacks run, which happens only in a task after a
 * GC (undici's hold each Request's parent signal until then).
 */
export async function collectAll() {
  // --expose-gc set at run time gives a fresh context a gc(); the main context stays as it was.
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc");
  for (let i = 0; i < 3; i++) {
    gc({ type: "major", execution: "sync", flavor: "last-resort" });
    await sleep(20);
  }
}

const out = process.env.LG_TEST_GC_PROBE;
if (out) {
  let seq = 0;
  const write = () => {
    // Written whole, then renamed: the reader never sees half a file.
    writeFileSync(`${out}.tmp`, JSON.stringify({ seq, pid: process.pid, ...process.memoryUsage() }));
    renameSync(`${out}.tmp`, out);
  };
  process.on("SIGUSR2", () => {
    void collectAll().then(() => {
      seq++;
      write();
    });
  });
  // Sample 0 (no GC) says the handler is in place: SIGUSR2 without it would end the process.
  write();
}
