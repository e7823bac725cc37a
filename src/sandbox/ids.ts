import { randomBytes } from "node:crypto";

/** A short unique sandbox id; also used in host names, cgroup and folder names. */
export function newSandboxId(): string {
  return `sb-${randomBytes(6).toString("hex")}`;
}
