/**
 * Built-in recordings for the replay provider (`--transcript sample:<name>`).
 * They are TypeScript modules, not JSON files read at run time, so they travel
 * inside the bundled CLI.
 */
import { fsEdit } from "./fs-edit.js";

export const SAMPLES: Record<string, unknown> = {
  "fs-edit": fsEdit,
};
