/**
 * Fuzzing the replication protocol codecs (targets: test/fuzz/targets/protocol.ts):
 * every input is decoded or rejected with a PgbbError — never a TypeError or
 * RangeError, never a hang, never an allocation its length fields ask for —
 * and BackendParser frames exactly the messages a reference framing finds,
 * whatever the chunking.
 */
import { test } from 'node:test';
import { fuzz } from './support/run-fuzz';

test('fuzz: BackendParser framing + CopyData / RowDescription / DataRow / notice decoders over mutated server streams', async (t) => {
  await fuzz(t, 'protocol', 'stream', 4000);
});

test('fuzz: BackendParser framing of random message sequences: same messages whatever the chunking, corrupt lengths rejected, huge ones not allocated', async (t) => {
  await fuzz(t, 'protocol', 'framing', 2000);
});

test('fuzz: decodeCopyData and decodeStreamingMessage on single payloads', async (t) => {
  await fuzz(t, 'protocol', 'copyDataPayload', 20000);
});
