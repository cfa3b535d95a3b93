/**
 * How many bytes fast-crc32c checksums while a function runs: its module's
 * `calculate` is wrapped for the duration (pgbb's modules call it through the
 * module object, so they see the wrapper). For tests that prove a byte is
 * checksummed once however many stages want its CRC.
 */
import fastCrc = require('fast-crc32c');

export async function crcBytesDuring<T>(f: () => T | Promise<T>): Promise<{ value: T; bytes: number }> {
  const mod = fastCrc as { calculate: typeof fastCrc.calculate };
  const real = mod.calculate;
  let bytes = 0;
  mod.calculate = (data, initial) => {
    bytes += data.length;
    return real(data, initial);
  };
  try {
    return { value: await f(), bytes };
  } finally {
    mod.calculate = real;
  }
}
