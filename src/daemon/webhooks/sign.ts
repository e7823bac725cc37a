/**
 * Webhook signatures: `X-LuminaGuard-Signature: sha256=<hex HMAC-SHA256(secret, body)>`.
 * The body carries the event's time and a delivery id (also in headers), both
 * covered by the signature, so a receiver can drop duplicates and stale events.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const SIGNATURE_HEADER = "x-luminaguard-signature";
export const TIMESTAMP_HEADER = "x-luminaguard-timestamp";
export const DELIVERY_HEADER = "x-luminaguard-delivery";
export const EVENT_HEADER = "x-luminaguard-event";

/** The signature header's value for `body`. */
export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/** True when `header` is the signature of `body` under `secret` (constant-time; receivers can use it). */
export function verifySignature(secret: string, body: string, header: string | null | undefined): boolean {
  if (typeof header !== "string") return false;
  const want = Buffer.from(signBody(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}
