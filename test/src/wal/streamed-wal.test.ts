import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWalOptions } from '../../../src/wal/streamed-wal';
import { UsageError } from '../../../src/errors';

test('WAL options: slots only with streaming, never with --no-slot, names checked', () => {
  checkWalOptions({});
  checkWalOptions({ wal: 'stream', slot: 'standby_1' });
  checkWalOptions({ wal: 'stream', noSlot: true });
  checkWalOptions({ wal: 'fetch', noSlot: true }); // pg_basebackup ignores --no-slot without streaming too
  assert.throws(() => checkWalOptions({ wal: 'fetch', slot: 's1' }), /only be used with WAL streaming/);
  checkWalOptions({ slot: 's1' }); // the library default is stream, as the CLI's
  assert.throws(() => checkWalOptions({ wal: 'none', slot: 's1' }), UsageError);
  assert.throws(() => checkWalOptions({ wal: 'stream', slot: 's1', noSlot: true }), /--no-slot cannot be used with a slot name/);
  assert.throws(() => checkWalOptions({ wal: 'stream', slot: 'S1' }), /invalid character/);
  assert.throws(() => checkWalOptions({ wal: 'streaming' }), /invalid WAL method "streaming"/);
});
