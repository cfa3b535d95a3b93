/** fast-crc32c ships no types: CRC32C (Castagnoli), optionally continuing from `initial`. */
declare module 'fast-crc32c' {
  export function calculate(data: Buffer | string, initial?: number): number;
}
