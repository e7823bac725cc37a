// Placeholder: the seccomp helper replaces this file with the real profiles.
export type SeccompLevel = "strict" | "default" | "permissive";
export type SeccompMode = "enforce" | "log";
