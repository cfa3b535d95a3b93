/**
 * One measured run for bench/s3-upload.ts: a synthetic backup (one archive
 * holding one file of --mib MiB of incompressible bytes, a small manifest)
 * written by the S3 sink (--to s3, to --endpoint, AWS_* from the
 * environment) or by the tar-files sink (--to tar, into --dir): the same
 * member stream, so the difference is the sink's.
 */
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { BackupEvent } from '../src/events';
import { S3Sink } from '../sinks/s3';
import { TarFilesSink } from '../sinks/tar-files';
import { arg, numArg } from './support/args';

const MIB = 1 << 20;

function* events(mib: number): Generator<BackupEvent> {
  yield {
    type: 'start', serverVersion: 150010, systemIdentifier: '7000000000000000001', timeline: 1, startLsn: '0/2000028',
    tablespaces: [{ oid: null, location: '', size: mib * MIB }], walSegmentSize: 16 * MIB, blockSize: 8192, segmentBlocks: 131072,
    dataChecksums: true, label: 'bench', totalBytes: mib * MIB,
  };
  yield { type: 'archive', kind: 'base', name: 'base', location: '' };
  yield { type: 'entry', path: 'base/1/16384', kind: 'file', size: mib * MIB, mode: 0o600, mtime: new Date(0) } as BackupEvent;
  // A few distinct random blocks, reused: incompressible to anything that does not look back 8 MiB.
  const blocks = Array.from({ length: 8 }, () => randomBytes(MIB));
  for (let i = 0; i < mib; i++) yield { type: 'data', offset: i * MIB, chunk: blocks[i % blocks.length] };
  yield { type: 'entry-end' };
  yield { type: 'archive-end' };
  yield { type: 'manifest', data: Buffer.from('{"PostgreSQL-Backup-Manifest-Version": 1, "Files": []}\n') };
  yield { type: 'end', endLsn: '0/3000000', timeline: 1 };
}

async function main(): Promise<void> {
  const mib = numArg('mib', 256);
  const to = arg('to', 's3');
  const sink =
    to === 's3'
      ? new S3Sink({
          location: { bucket: arg('bucket', 'pgbb-bench'), prefix: 'bench' },
          compress: { method: 'none' },
          queueSize: numArg('queue', 3),
          partSize: numArg('part-mib', 8) * MIB,
        })
      : new TarFilesSink({ target: arg('dir', ''), compress: { method: 'none' }, sync: true });
  await sink.ready();
  await pipeline(Readable.from(events(mib), { objectMode: true, highWaterMark: 4 }), sink);
}

main().catch((err) => {
  process.stderr.write(`bench child: ${err.message}\n`);
  process.exit(1);
});
