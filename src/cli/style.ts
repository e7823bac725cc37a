/** Terminal colours, only when stdout is a terminal and NO_COLOR is unset. */
const enabled = process.stdout.isTTY === true && !process.env.NO_COLOR;
const wrap = (code: number) => (s: string): string => (enabled ? `\x1b[${code}m${s}\x1b[0m` : s);

export const style = {
  bold: wrap(1),
  dim: wrap(2),
  red: wrap(31),
  green: wrap(32),
  yellow: wrap(33),
};
