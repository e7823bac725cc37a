import { describe, expect, it } from "vitest";
import { connectionTokens, requestHeaders, responseHeaders, stripHopByHop } from "../../src/policy/firewall/proxy-headers.js";
import { parseProxyTarget } from "../../src/policy/firewall/proxy-http.js";

describe("hop-by-hop headers", () => {
  const raw = [
    "Host", "evil.test",
    "User-Agent", "agent/1",
    "Proxy-Authorization", "Basic c2VjcmV0",
    "Proxy-Connection", "keep-alive",
    "Connection", "keep-alive, X-Secret-Hop",
    "X-Secret-Hop", "1",
    "Keep-Alive", "timeout=5",
    "TE", "trailers",
    "Transfer-Encoding", "chunked",
    "Upgrade", "websocket",
    "Expect", "100-continue",
    "Accept", "a/b",
    "accept", "c/d",
  ];

  it("reads the names Connection lists, case-insensitively and across repeats", () => {
    expect([...connectionTokens(["connection", "A, b", "CONNECTION", " C ,"])]).toEqual(["a", "b", "c"]);
  });

  it("forwards requests without hop-by-hop headers, with Host set to the checked authority", () => {
    expect(requestHeaders(raw, "allowed.test:8080")).toEqual([
      "Host", "allowed.test:8080",
      "User-Agent", "agent/1",
      "Accept", "a/b",
      "accept", "c/d",
    ]);
  });

  it("returns responses without hop-by-hop headers but keeps end-to-end ones in order and case", () => {
    const res = ["Content-Type", "text/plain", "Connection", "close, X-Hop", "X-Hop", "1", "Set-Cookie", "a=1", "Set-Cookie", "b=2", "Transfer-Encoding", "chunked"];
    expect(responseHeaders(res)).toEqual(["Content-Type", "text/plain", "Set-Cookie", "a=1", "Set-Cookie", "b=2"]);
  });

  it("tolerates an odd-length list", () => {
    expect(stripHopByHop(["A", "1", "B"])).toEqual(["A", "1"]);
  });
});

describe("parseProxyTarget", () => {
  it("keeps the path as written and canonicalizes only the authority", () => {
    expect(parseProxyTarget("http://Allowed.TEST./a/../b?x=%41#frag")).toEqual({
      target: { kind: "name", host: "allowed.test" },
      port: 80,
      authority: "allowed.test",
      path: "/a/../b?x=%41",
    });
    expect(parseProxyTarget("http://user:pw@a.test:8080?q")).toMatchObject({ authority: "a.test:8080", port: 8080, path: "/?q" });
    expect(parseProxyTarget("HTTP://[::1]:81/")).toMatchObject({ target: { kind: "ipv6", host: "::1" }, authority: "[::1]:81" });
  });

  it("explains what it cannot proxy with a 400", () => {
    expect(parseProxyTarget("/just/a/path")).toMatchObject({ status: 400, message: expect.stringContaining("send the full URL") });
    expect(parseProxyTarget("https://a.test/")).toMatchObject({ status: 400, message: expect.stringContaining("CONNECT") });
    expect(parseProxyTarget("ftp://a.test/")).toMatchObject({ status: 400 });
    expect(parseProxyTarget("http://a.test:99999/")).toMatchObject({ status: 400 });
    expect(parseProxyTarget("http:///x")).toMatchObject({ status: 400 });
  });
});
