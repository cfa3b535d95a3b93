/**
 * Counts the async resources Node creates while `run` runs, by type
 * (async_hooks' init: 'FILEHANDLE' for each fs.promises FileHandle,
 * 'FSREQPROMISE' / 'FSREQCALLBACK' for each asynchronous fs request). Each is
 * a JS object with a native half that lives until V8 collects it, so a count
 * that grows with a run's file count is memory that grows with it too.
 */
import { createHook } from 'node:async_hooks';

export async function countAsyncResources(run: () => Promise<void>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const hook = createHook({ init: (_id, type) => counts.set(type, (counts.get(type) ?? 0) + 1) });
  hook.enable();
  try {
    await run();
  } finally {
    hook.disable();
  }
  return counts;
}
