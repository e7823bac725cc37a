// The BPF layer on its own: wire encoding, the kernel's acceptance rules, and
// the interpreter the other seccomp tests rely on.
import { describe, expect, it } from "vitest";
import {
  BPF_A,
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_AND,
  BPF_DIV,
  BPF_IMM,
  BPF_JA,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JMP,
  BPF_JSET,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LEN,
  BPF_MEM,
  BPF_MISC,
  BPF_RET,
  BPF_RSH,
  BPF_ST,
  BPF_TAX,
  BPF_W,
  BPF_X,
  SECCOMP_RET_ALLOW,
  decodeProgram,
  encodeProgram,
  formatProgram,
  jump,
  ret,
  runFilter,
  stmt,
  validateProgram,
} from "../../src/policy/seccomp/bpf.js";
import type { Instruction } from "../../src/policy/seccomp/bpf.js";
import { SeccompError } from "../../src/policy/seccomp/errors.js";
import { LuminaError, hasCode } from "../../src/errors.js";

const ld = (k: number): Instruction => stmt(BPF_LD | BPF_W | BPF_ABS, k);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SeccompError ? err.code : `not a SeccompError: ${String(err)}`;
  }
  return undefined;
}

describe("encode/decode", () => {
  it("writes struct sock_filter little-endian: u16 code, u8 jt, u8 jf, u32 k", () => {
    const buf = encodeProgram([jump(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 2), ret(SECCOMP_RET_ALLOW)]);
    expect(buf.length).toBe(16);
    expect([...buf.subarray(0, 8)]).toEqual([0x15, 0x00, 0x01, 0x02, 0x3e, 0x00, 0x00, 0xc0]);
    expect([...buf.subarray(8, 16)]).toEqual([0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0x7f]);
  });

  it("round-trips", () => {
    const program = [ld(4), jump(BPF_JMP | BPF_JGE | BPF_K, 0xffffffff, 255, 0), ret(0x80000000), ret(5)];
    expect(decodeProgram(encodeProgram(program))).toEqual(program);
  });

  it("decodes from a Uint8Array view with an offset", () => {
    const bytes = encodeProgram([ret(7)]);
    const padded = new Uint8Array(bytes.length + 3);
    padded.set(bytes, 3);
    expect(decodeProgram(padded.subarray(3))).toEqual([ret(7)]);
  });

  it("rejects a length that is not a multiple of 8", () => {
    expect(codeOf(() => decodeProgram(new Uint8Array(12)))).toBe("E_SECCOMP_INVALID_PROGRAM");
  });

  it("refuses jump offsets that do not fit in a u8", () => {
    expect(codeOf(() => jump(BPF_JMP | BPF_JEQ | BPF_K, 1, 256, 0))).toBe("E_SECCOMP_JUMP_RANGE");
    expect(codeOf(() => jump(BPF_JMP | BPF_JEQ | BPF_K, 1, 0, -1))).toBe("E_SECCOMP_JUMP_RANGE");
    expect(jump(BPF_JMP | BPF_JEQ | BPF_K, 1, 255, 255).jt).toBe(255);
  });
});

describe("validateProgram", () => {
  it("accepts a minimal filter", () => {
    expect(() => validateProgram([ret(SECCOMP_RET_ALLOW)])).not.toThrow();
  });

  it.each([
    ["empty", []],
    ["no final return", [ld(0)]],
    ["jump past the end", [jump(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0), ret(0)]],
    ["ja past the end", [stmt(BPF_JMP | BPF_JA, 1), ret(0)]],
    ["unaligned load", [ld(2), ret(0)]],
    ["load beyond seccomp_data", [ld(64), ret(0)]],
    ["byte load (not allowed in seccomp)", [stmt(BPF_LD | 0x10 | BPF_ABS, 0), ret(0)]],
    ["division by constant zero", [stmt(BPF_ALU | BPF_DIV | BPF_K, 0), ret(0)]],
    ["scratch slot 16", [stmt(BPF_ST, 16), ret(0)]],
    ["opcode above 0xff", [{ code: 0x106, jt: 0, jf: 0, k: 0 }]],
  ] as const)("rejects %s", (_name, program) => {
    expect(codeOf(() => validateProgram(program))).toBe("E_SECCOMP_INVALID_PROGRAM");
  });

  it("rejects more than BPF_MAXINSNS instructions", () => {
    expect(codeOf(() => validateProgram(Array.from({ length: 4097 }, () => ret(0))))).toBe("E_SECCOMP_PROGRAM_TOO_LARGE");
    expect(() => validateProgram(Array.from({ length: 4096 }, () => ret(0)))).not.toThrow();
  });
});

describe("runFilter", () => {
  const data = { nr: 59, arch: 0xc000003e, instruction_pointer: 0x1122334455667788n, args: [0xaaaabbbbccccddddn, 7n, 0n, 0n, 0n, 0xffffffffn] };

  it("loads nr, arch, instruction pointer and argument halves at the seccomp_data offsets", () => {
    expect(runFilter([ld(0), stmt(BPF_RET | BPF_A, 0)], data)).toBe(59);
    expect(runFilter([ld(4), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0xc000003e);
    expect(runFilter([ld(8), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0x55667788);
    expect(runFilter([ld(12), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0x11223344);
    expect(runFilter([ld(16), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0xccccdddd);
    expect(runFilter([ld(20), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0xaaaabbbb);
    expect(runFilter([ld(24), stmt(BPF_RET | BPF_A, 0)], data)).toBe(7);
    expect(runFilter([ld(56), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0xffffffff);
    expect(runFilter([ld(60), stmt(BPF_RET | BPF_A, 0)], data)).toBe(0);
  });

  it("treats negative arguments as their 64-bit two's complement", () => {
    expect(runFilter([ld(16), stmt(BPF_RET | BPF_A, 0)], { nr: 0, arch: 0, args: [-1n] })).toBe(0xffffffff);
    expect(runFilter([ld(20), stmt(BPF_RET | BPF_A, 0)], { nr: 0, arch: 0, args: [-1n] })).toBe(0xffffffff);
  });

  it("follows jt/jf relative to the next instruction, unsigned", () => {
    const program = [
      ld(0),
      jump(BPF_JMP | BPF_JGT | BPF_K, 0x7fffffff, 2, 0),
      jump(BPF_JMP | BPF_JSET | BPF_K, 0x10, 2, 0),
      ret(1),
      ret(2), // > 0x7fffffff (an unsigned compare)
      ret(3), // bit 4 set
    ];
    expect(runFilter(program, { nr: 0xfffffff0, arch: 0 })).toBe(2);
    expect(runFilter(program, { nr: 0x10, arch: 0 })).toBe(3);
    expect(runFilter(program, { nr: 1, arch: 0 })).toBe(1);
  });

  it("runs ALU, scratch memory, X register, ja and len like the kernel", () => {
    const program = [
      stmt(BPF_LD | BPF_W | BPF_LEN, 0), // A = 64
      stmt(BPF_ALU | BPF_ADD | BPF_K, 0xffffffff), // wraps to 63
      stmt(BPF_ST, 3),
      stmt(BPF_LDX | BPF_W | BPF_IMM, 3),
      stmt(BPF_ALU | BPF_RSH | BPF_X, 0), // 63 >> 3 = 7
      stmt(BPF_MISC | BPF_TAX, 0),
      stmt(BPF_LD | BPF_W | BPF_MEM, 3), // A = 63
      stmt(BPF_ALU | BPF_AND | BPF_X, 0), // 63 & 7 = 7
      stmt(BPF_JMP | BPF_JA, 1),
      ret(0xdead),
      stmt(BPF_RET | BPF_A, 0),
    ];
    expect(runFilter(program, { nr: 0, arch: 0 })).toBe(7);
  });

  it("returns 0 (kill) on division by a zero X register, as the kernel does", () => {
    const program = [stmt(BPF_LD | BPF_W | BPF_IMM, 5), stmt(BPF_ALU | BPF_DIV | BPF_X, 0), ret(SECCOMP_RET_ALLOW)];
    expect(runFilter(program, { nr: 0, arch: 0 })).toBe(0);
  });

  it("refuses to run an invalid program", () => {
    expect(codeOf(() => runFilter([ld(0)], { nr: 0, arch: 0 }))).toBe("E_SECCOMP_INVALID_PROGRAM");
  });
});

describe("formatProgram and errors", () => {
  it("prints absolute jump targets", () => {
    const text = formatProgram([ld(4), jump(BPF_JMP | BPF_JEQ | BPF_K, 0xc000003e, 1, 0), ret(0x80000000), ret(SECCOMP_RET_ALLOW)]);
    expect(text.split("\n")).toEqual(["   0: ld [4]", "   1: jeq #0xc000003e ? 3 : 2", "   2: ret 0x80000000", "   3: ret 0x7fff0000"]);
  });

  it("SeccompError is a LuminaError with a stable code", () => {
    const err = new SeccompError("E_SECCOMP_ARCH", "x");
    expect(err).toBeInstanceOf(LuminaError);
    expect(hasCode(err, "E_SECCOMP_ARCH")).toBe(true);
    expect(err.name).toBe("SeccompError");
    expect(err.toJSON()).toEqual({ code: "E_SECCOMP_ARCH", message: "x" });
  });
});
