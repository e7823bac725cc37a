import { describe, expect, it } from "vitest";
import { failure } from "../../src/policy/firewall/proxy-decide.js";
import { parseGreeting, parseRequest, replyFor, SocksReply } from "../../src/policy/firewall/proxy-socks.js";

const req = (...bytes: number[]) => Buffer.from(bytes);

describe("SOCKS5 parsing", () => {
  it("reads greetings and whether no-auth is offered", () => {
    expect(parseGreeting(req(5))).toEqual({ status: "incomplete" });
    expect(parseGreeting(req(5, 2, 2))).toEqual({ status: "incomplete" });
    expect(parseGreeting(req(5, 2, 2, 0))).toEqual({ status: "greeting", used: 4, noAuth: true });
    expect(parseGreeting(req(5, 1, 2))).toMatchObject({ noAuth: false });
    expect(parseGreeting(req(4, 1, 0))).toMatchObject({ status: "error" });
    expect(parseGreeting(req(5, 0))).toMatchObject({ status: "error" });
  });

  it("reads CONNECT requests by name, IPv4 and IPv6 into canonical targets", () => {
    const name = Buffer.from("API.Example.com.");
    expect(parseRequest(Buffer.concat([req(5, 1, 0, 3, name.length), name, req(1, 187)]))).toEqual({
      status: "request",
      used: 5 + name.length + 2,
      target: { kind: "name", host: "api.example.com" },
      port: 443,
    });
    expect(parseRequest(req(5, 1, 0, 1, 10, 0, 0, 1, 0, 80))).toMatchObject({ target: { kind: "ipv4", host: "10.0.0.1" }, port: 80 });
    expect(parseRequest(req(5, 1, 0, 4, 0x20, 1, 0x0d, 0xb8, ...Array(11).fill(0), 1, 0, 22))).toMatchObject({ target: { kind: "ipv6", host: "2001:db8::1" }, port: 22 });
  });

  it("waits for the whole request, and refuses bad ones with the right reply", () => {
    expect(parseRequest(req(5, 1, 0, 3, 10, 97))).toEqual({ status: "incomplete" });
    expect(parseRequest(req(5, 1, 0, 1, 1, 2, 3, 4, 0))).toEqual({ status: "incomplete" });
    const code = (b: Buffer) => {
      const r = parseRequest(b);
      return r.status === "error" ? r.reply?.[1] : r.status;
    };
    expect(code(req(5, 3, 0, 1, 1, 2, 3, 4, 0, 80))).toBe(SocksReply.commandNotSupported);
    expect(code(req(5, 1, 0, 9, 1, 2, 3, 4, 0, 80))).toBe(SocksReply.addressTypeNotSupported);
    expect(code(req(5, 1, 0, 3, 0, 0, 80))).toBe(SocksReply.generalFailure); // empty name
    expect(code(Buffer.concat([req(5, 1, 0, 3, 4), Buffer.from("a b."), req(0, 80)]))).toBe(SocksReply.generalFailure);
    expect(code(Buffer.concat([req(5, 1, 0, 3, 6), Buffer.from("a.test"), req(0, 0)]))).toBe(SocksReply.generalFailure); // port 0
  });

  it("maps refusals and failures to reply codes", () => {
    expect(replyFor({ status: 403, message: "x", denied: "domain" })).toBe(SocksReply.notAllowed);
    expect(replyFor(failure(504, "timed out"))).toBe(SocksReply.ttlExpired);
    expect(replyFor(failure(502, '"a" (1.2.3.4:80) refused the connection'))).toBe(SocksReply.connectionRefused);
    expect(replyFor(failure(502, "unreachable"))).toBe(SocksReply.hostUnreachable);
  });
});
