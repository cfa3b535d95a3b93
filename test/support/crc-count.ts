/**
 * How many bytes pgbb's CRC32C (src/codec/crc32c.ts, whichever library it
 * chose) checksums while a function runs: the module's `crc32c` is wrapped
 * for the duration (pgbb's modules call it through the module object, so
 * they see the wrapper). For tests that prove a byte is checksummed once
 * however many stages want its CRC.
 */
import pgbbCrc = require('../../src/codec/crc32c');

export async function crcBytesDuring<T>(f: () => T | Promise<T>): Promise<{ value: T; bytes: number }> {
  const mod = pgbbCrc as { crc32c: typeof pgbbCrc.crc32c };
  const real = mod.crc32c;
  let bytes = 0;
  mod.crc32c = (data, initial) => {
    bytes += data.length;
    return real(data, initial);
  };
  try {
    return { value: await f(), bytes };
  } finally {
    mod.crc32c = real;
  }
}
