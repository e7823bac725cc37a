// Classic BPF as seccomp uses it: opcodes, the instruction record, the wire
// encoding bubblewrap reads (`--seccomp FD` takes a raw `struct sock_filter[]`),
// a checker that applies the kernel's own rules, and a small interpreter.
//
// The interpreter exists so tests can check what a program *does* (which action
// a given syscall gets) instead of only what it looks like; it follows the
// kernel's semantics for the subset seccomp accepts (seccomp_check_filter).
import { SeccompError } from "./errors.js";

// Instruction classes.
export const BPF_LD = 0x00;
export const BPF_LDX = 0x01;
export const BPF_ST = 0x02;
export const BPF_STX = 0x03;
export const BPF_ALU = 0x04;
export const BPF_JMP = 0x05;
export const BPF_RET = 0x06;
export const BPF_MISC = 0x07;
// Load sizes and modes (seccomp accepts only 32-bit words).
export const BPF_W = 0x00;
export const BPF_IMM = 0x00;
export const BPF_ABS = 0x20;
export const BPF_MEM = 0x60;
export const BPF_LEN = 0x80;
// ALU operations.
export const BPF_ADD = 0x00;
export const BPF_SUB = 0x10;
export const BPF_MUL = 0x20;
export const BPF_DIV = 0x30;
export const BPF_OR = 0x40;
export const BPF_AND = 0x50;
export const BPF_LSH = 0x60;
export const BPF_RSH = 0x70;
export const BPF_NEG = 0x80;
export const BPF_XOR = 0xa0;
// Jump operations.
export const BPF_JA = 0x00;
export const BPF_JEQ = 0x10;
export const BPF_JGT = 0x20;
export const BPF_JGE = 0x30;
export const BPF_JSET = 0x40;
// Operand source: the constant k, or the X register (RET: A register).
export const BPF_K = 0x00;
export const BPF_X = 0x08;
export const BPF_A = 0x10;
// BPF_MISC operations.
export const BPF_TAX = 0x00;
export const BPF_TXA = 0x80;

/** The kernel's limit on instructions in one filter (BPF_MAXINSNS). */
export const BPF_MAXINSNS = 4096;
/** Longest conditional jump: jt and jf are u8 offsets. */
export const BPF_MAX_JUMP = 255;
/** Bytes per encoded instruction: u16 code, u8 jt, u8 jf, u32 k. */
export const SOCK_FILTER_SIZE = 8;

// Seccomp return values (action in the high 16 bits, data in the low 16).
export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_KILL_THREAD = 0x00000000;
export const SECCOMP_RET_TRAP = 0x00030000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_TRACE = 0x7ff00000;
export const SECCOMP_RET_LOG = 0x7ffc0000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
export const SECCOMP_RET_DATA = 0x0000ffff;

// struct seccomp_data: { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
export const SECCOMP_DATA_NR = 0;
export const SECCOMP_DATA_ARCH = 4;
export const SECCOMP_DATA_IP = 8;
export const SECCOMP_DATA_ARGS = 16;
export const SECCOMP_DATA_SIZE = 64;

/** Offset of the low 32 bits of syscall argument `i` (both supported arches are little-endian). */
export function argLowOffset(i: number): number {
  return SECCOMP_DATA_ARGS + 8 * i;
}

/** One classic BPF instruction (`struct sock_filter`). */
export interface Instruction {
  readonly code: number;
  readonly jt: number;
  readonly jf: number;
  readonly k: number;
}

/** A non-jump instruction. */
export function stmt(code: number, k: number): Instruction {
  return { code, jt: 0, jf: 0, k: k >>> 0 };
}

/** A conditional jump; throws E_SECCOMP_JUMP_RANGE when an offset does not fit in a u8. */
export function jump(code: number, k: number, jt: number, jf: number): Instruction {
  for (const off of [jt, jf]) {
    if (!Number.isInteger(off) || off < 0 || off > BPF_MAX_JUMP) {
      throw new SeccompError(
        "E_SECCOMP_JUMP_RANGE",
        `A BPF jump offset of ${off} does not fit in 8 bits (0..${BPF_MAX_JUMP}). This is a compiler bug: report it with the profile that caused it.`,
        { details: { code, k, jt, jf } },
      );
    }
  }
  return { code, jt, jf, k: k >>> 0 };
}

/** A seccomp return of a fixed action. */
export function ret(action: number): Instruction {
  return stmt(BPF_RET | BPF_K, action);
}

/** Encodes instructions as the raw `struct sock_filter[]` bwrap --seccomp reads. */
export function encodeProgram(program: readonly Instruction[]): Buffer {
  const buf = Buffer.alloc(program.length * SOCK_FILTER_SIZE);
  program.forEach((ins, i) => {
    const at = i * SOCK_FILTER_SIZE;
    buf.writeUInt16LE(ins.code, at);
    buf.writeUInt8(ins.jt, at + 2);
    buf.writeUInt8(ins.jf, at + 3);
    buf.writeUInt32LE(ins.k >>> 0, at + 4);
  });
  return buf;
}

/** Decodes a raw `struct sock_filter[]` back into instructions. */
export function decodeProgram(bytes: Uint8Array): Instruction[] {
  if (bytes.length % SOCK_FILTER_SIZE !== 0) {
    throw new SeccompError(
      "E_SECCOMP_INVALID_PROGRAM",
      `A seccomp program is a whole number of ${SOCK_FILTER_SIZE}-byte instructions, but got ${bytes.length} bytes; the file is truncated or not a BPF program.`,
    );
  }
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Instruction[] = [];
  for (let at = 0; at < buf.length; at += SOCK_FILTER_SIZE) {
    out.push({ code: buf.readUInt16LE(at), jt: buf.readUInt8(at + 2), jf: buf.readUInt8(at + 3), k: buf.readUInt32LE(at + 4) });
  }
  return out;
}

const ALU_OPS = new Set([BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH, BPF_XOR]);
const COND_JUMPS = new Set([BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET]);

function invalid(pc: number, why: string): SeccompError {
  return new SeccompError("E_SECCOMP_INVALID_PROGRAM", `Instruction ${pc}: ${why}; the kernel would reject this filter with EINVAL.`, {
    details: { pc },
  });
}

/** Throws E_SECCOMP_INVALID_PROGRAM unless the kernel would accept the program as a seccomp filter. */
export function validateProgram(program: readonly Instruction[]): void {
  const n = program.length;
  if (n === 0) throw invalid(0, "the program is empty");
  if (n > BPF_MAXINSNS) {
    throw new SeccompError("E_SECCOMP_PROGRAM_TOO_LARGE", `The program has ${n} instructions; the kernel accepts at most ${BPF_MAXINSNS}.`);
  }
  program.forEach((ins, pc) => {
    const { code, jt, jf, k } = ins;
    const cls = code & 0x07;
    const op = code & 0xf0;
    const src = code & 0x08;
    if (code > 0xff) throw invalid(pc, `opcode 0x${code.toString(16)} is not a classic BPF opcode`);
    switch (cls) {
      case BPF_LD:
      case BPF_LDX:
        if (code === (BPF_LD | BPF_W | BPF_ABS)) {
          if (k % 4 !== 0 || k >= SECCOMP_DATA_SIZE) throw invalid(pc, `load from offset ${k} is outside seccomp_data or unaligned`);
        } else if (code === (cls | BPF_W | BPF_MEM)) {
          if (k >= 16) throw invalid(pc, `scratch slot ${k} does not exist`);
        } else if (code !== (cls | BPF_W | BPF_IMM) && code !== (cls | BPF_W | BPF_LEN)) {
          throw invalid(pc, `load opcode 0x${code.toString(16)} is not allowed in seccomp`);
        }
        break;
      case BPF_ST:
      case BPF_STX:
        if (code !== cls) throw invalid(pc, `store opcode 0x${code.toString(16)} is not valid`);
        if (k >= 16) throw invalid(pc, `scratch slot ${k} does not exist`);
        break;
      case BPF_ALU:
        if (op === BPF_NEG) {
          if (code !== (BPF_ALU | BPF_NEG)) throw invalid(pc, "malformed NEG");
        } else if (!ALU_OPS.has(op)) {
          throw invalid(pc, `ALU opcode 0x${code.toString(16)} is not allowed in seccomp`);
        } else if (src === BPF_K && op === BPF_DIV && k === 0) {
          throw invalid(pc, "division by the constant 0");
        } else if (src === BPF_K && (op === BPF_LSH || op === BPF_RSH) && k >= 32) {
          throw invalid(pc, `shift by ${k}`);
        }
        break;
      case BPF_JMP:
        if (code === (BPF_JMP | BPF_JA)) {
          if (pc + 1 + k >= n) throw invalid(pc, `jump always by ${k} leaves the program`);
        } else if (COND_JUMPS.has(op)) {
          if (pc + 1 + jt >= n || pc + 1 + jf >= n) throw invalid(pc, `jump target (jt=${jt}, jf=${jf}) leaves the program`);
        } else {
          throw invalid(pc, `jump opcode 0x${code.toString(16)} is not valid`);
        }
        break;
      case BPF_RET:
        if (code !== (BPF_RET | BPF_K) && code !== (BPF_RET | BPF_A)) throw invalid(pc, `return opcode 0x${code.toString(16)} is not valid`);
        break;
      case BPF_MISC:
        if (code !== (BPF_MISC | BPF_TAX) && code !== (BPF_MISC | BPF_TXA)) throw invalid(pc, `misc opcode 0x${code.toString(16)} is not valid`);
        break;
    }
  });
  const last = program[n - 1];
  if (last === undefined || (last.code & 0x07) !== BPF_RET) throw invalid(n - 1, "the last instruction is not a return");
}

/** What the kernel hands a seccomp filter for one syscall. */
export interface SeccompData {
  nr: number;
  arch: number;
  /** Six arguments as unsigned 64-bit values; missing ones are 0. */
  args?: readonly bigint[];
  instruction_pointer?: bigint;
}

function seccompDataBytes(data: SeccompData): Buffer {
  const buf = Buffer.alloc(SECCOMP_DATA_SIZE);
  buf.writeUInt32LE(data.nr >>> 0, SECCOMP_DATA_NR);
  buf.writeUInt32LE(data.arch >>> 0, SECCOMP_DATA_ARCH);
  buf.writeBigUInt64LE(BigInt.asUintN(64, data.instruction_pointer ?? 0n), SECCOMP_DATA_IP);
  for (let i = 0; i < 6; i++) {
    buf.writeBigUInt64LE(BigInt.asUintN(64, data.args?.[i] ?? 0n), SECCOMP_DATA_ARGS + 8 * i);
  }
  return buf;
}

function alu(op: number, a: number, b: number): number {
  switch (op) {
    case BPF_ADD: return (a + b) >>> 0;
    case BPF_SUB: return (a - b) >>> 0;
    case BPF_MUL: return Math.imul(a, b) >>> 0;
    case BPF_DIV: return Math.floor(a / b) >>> 0;
    case BPF_OR: return (a | b) >>> 0;
    case BPF_AND: return (a & b) >>> 0;
    case BPF_XOR: return (a ^ b) >>> 0;
    case BPF_LSH: return b >= 32 ? 0 : (a << b) >>> 0;
    case BPF_RSH: return b >= 32 ? 0 : a >>> b;
    default: throw new SeccompError("E_SECCOMP_INVALID_PROGRAM", `Unknown ALU operation 0x${op.toString(16)}.`);
  }
}

/** Runs a seccomp program on one syscall the way the kernel would and returns the seccomp action value. */
export function runFilter(program: readonly Instruction[], data: SeccompData): number {
  validateProgram(program);
  const bytes = seccompDataBytes(data);
  const scratch = new Uint32Array(16);
  let a = 0;
  let x = 0;
  let pc = 0;
  // validateProgram guarantees forward-only, in-range jumps and a final return,
  // so this loop always ends within program.length steps.
  for (;;) {
    const ins = program[pc];
    if (ins === undefined) throw new SeccompError("E_SECCOMP_INVALID_PROGRAM", `Execution ran past the end at instruction ${pc}.`);
    const { code, jt, jf, k } = ins;
    const cls = code & 0x07;
    const op = code & 0xf0;
    pc++;
    switch (cls) {
      case BPF_LD:
      case BPF_LDX: {
        const mode = code & 0xe0;
        const v = mode === BPF_ABS ? bytes.readUInt32LE(k) : mode === BPF_LEN ? SECCOMP_DATA_SIZE : mode === BPF_MEM ? (scratch[k] ?? 0) : k >>> 0;
        if (cls === BPF_LD) a = v;
        else x = v;
        break;
      }
      case BPF_ST: scratch[k] = a; break;
      case BPF_STX: scratch[k] = x; break;
      case BPF_ALU:
        if (op === BPF_NEG) a = -a >>> 0;
        else if ((code & BPF_X) !== 0 && op === BPF_DIV && x === 0) return 0; // the kernel aborts the filter with 0 (kill)
        else a = alu(op, a, (code & BPF_X) !== 0 ? x : k >>> 0);
        break;
      case BPF_JMP: {
        if (op === BPF_JA) {
          pc += k;
          break;
        }
        const v = (code & BPF_X) !== 0 ? x : k >>> 0;
        const taken =
          op === BPF_JEQ ? a === v : op === BPF_JGT ? a > v : op === BPF_JGE ? a >= v : (a & v) >>> 0 !== 0;
        pc += taken ? jt : jf;
        break;
      }
      case BPF_RET:
        return ((code & 0x18) === BPF_A ? a : k) >>> 0;
      case BPF_MISC:
        if ((code & 0xf8) === BPF_TAX) x = a;
        else a = x;
        break;
    }
  }
}

const JUMP_NAMES: Record<number, string> = { [BPF_JEQ]: "jeq", [BPF_JGT]: "jgt", [BPF_JGE]: "jge", [BPF_JSET]: "jset" };

function hex(v: number): string {
  return `0x${(v >>> 0).toString(16)}`;
}

/** One line per instruction, like `bpf_dbg`; for error messages and debugging a profile. */
export function formatProgram(program: readonly Instruction[]): string {
  return program
    .map((ins, pc) => {
      const { code, jt, jf, k } = ins;
      const cls = code & 0x07;
      let text: string;
      if (code === (BPF_LD | BPF_W | BPF_ABS)) text = `ld [${k}]`;
      else if (code === (BPF_ALU | BPF_AND | BPF_K)) text = `and #${hex(k)}`;
      else if (code === (BPF_JMP | BPF_JA)) text = `ja ${pc + 1 + k}`;
      else if (cls === BPF_JMP && JUMP_NAMES[code & 0xf0] !== undefined && (code & BPF_X) === 0) {
        text = `${JUMP_NAMES[code & 0xf0]} #${hex(k)} ? ${pc + 1 + jt} : ${pc + 1 + jf}`;
      } else if (code === (BPF_RET | BPF_K)) text = `ret ${hex(k)}`;
      else text = `code=${hex(code)} jt=${jt} jf=${jf} k=${hex(k)}`;
      return `${String(pc).padStart(4)}: ${text}`;
    })
    .join("\n");
}
