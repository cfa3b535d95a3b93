/**
 * The bytes of one tar archive → member events (`entry`, `data`, `entry-end`),
 * as an async generator: it pulls the next input chunk only when its consumer
 * has taken every event of the previous one, so memory stays bounded by one
 * input chunk whatever the archive's size.
 *
 * `onMember` sees each member first (the backup descriptor rides on the first
 * member's pax comment). A truncated or malformed archive throws a
 * TarFormatError naming the archive and member.
 */
import type { Readable } from 'node:stream';
import { TarParser, type TarMember } from '../codec/tar/tar-parser';
import type { BackupEvent } from '../events';

export async function* tarMembers(
  input: AsyncIterable<Buffer> | Readable,
  archiveName: string,
  onMember?: (m: TarMember) => void,
): AsyncGenerator<BackupEvent> {
  let queue: BackupEvent[] = [];
  const parser = new TarParser(
    {
      entry: (m) => {
        onMember?.(m);
        queue.push({ type: 'entry', path: m.path, kind: m.kind, size: m.size, mode: m.mode, mtime: m.mtime, linkTarget: m.linkTarget });
      },
      data: (chunk, offset) => queue.push({ type: 'data', offset, chunk }),
      entryEnd: () => queue.push({ type: 'entry-end' }),
    },
    { archiveName, requireEndMarker: true },
  );
  for await (const chunk of input as AsyncIterable<Buffer>) {
    parser.write(chunk);
    if (queue.length) {
      const out = queue;
      queue = [];
      yield* out;
    }
  }
  parser.end();
  yield* queue;
}
