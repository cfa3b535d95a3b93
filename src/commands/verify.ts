/**
 * `pgbb verify SOURCE`: the CLI's options onto the builder
 * (src/pipeline/verify.ts): the checks in series, in report mode.
 */
import { verify, type VerifyOptions, type VerifyReport } from '../pipeline/verify';

export type { VerifyOptions, VerifyReport };

export function verifyCommand(o: VerifyOptions): Promise<VerifyReport> {
  return verify(o);
}
