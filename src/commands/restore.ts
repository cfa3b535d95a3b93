/**
 * `pgbb restore SOURCE -D DATADIR`: the CLI's options onto the builder
 * (src/pipeline/restore.ts).
 */
import { restore, type RestoreOptions, type RestoreResult } from '../pipeline/restore';

export type { RestoreOptions, RestoreResult };

export function restoreCommand(o: RestoreOptions): Promise<RestoreResult> {
  return restore(o);
}
