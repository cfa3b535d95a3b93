import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkHistoryRow,
  createTemporarySlotCommand,
  historyFileName,
  readSlotCommand,
  startReplicationCommand,
  timelineHistoryCommand,
  validateSlotName,
} from '../../../../src/codec/protocol/replication-commands';
import { ProtocolError, UsageError } from '../../../../src/errors';

test('temporary slot: 15+ option list, 13/14 bare RESERVE_WAL', () => {
  assert.equal(createTemporarySlotCommand('pgbb_4242', 150018), 'CREATE_REPLICATION_SLOT "pgbb_4242" TEMPORARY PHYSICAL ( RESERVE_WAL )');
  assert.equal(createTemporarySlotCommand('pgbb_4242', 140013), 'CREATE_REPLICATION_SLOT "pgbb_4242" TEMPORARY PHYSICAL RESERVE_WAL');
  assert.equal(readSlotCommand('s1'), 'READ_REPLICATION_SLOT "s1"');
});

test('START_REPLICATION: segment start in X/X, timeline, optional slot', () => {
  assert.equal(startReplicationCommand(0x3000000n, 1), 'START_REPLICATION PHYSICAL 0/3000000 TIMELINE 1');
  assert.equal(startReplicationCommand(0x1_0a000000n, 2, 's1'), 'START_REPLICATION SLOT "s1" PHYSICAL 1/A000000 TIMELINE 2');
  assert.throws(() => startReplicationCommand(0n, 0), ProtocolError);
});

test('timeline history: command and file name', () => {
  assert.equal(timelineHistoryCommand(2), 'TIMELINE_HISTORY 2');
  assert.equal(historyFileName(2), '00000002.history');
  assert.equal(historyFileName(0x1a), '0000001A.history');
  assert.deepEqual(checkHistoryRow(2, '00000002.history', '1\t0/3000060\tno recovery target specified\n'), {
    name: '00000002.history',
    content: '1\t0/3000060\tno recovery target specified\n',
  });
  assert.throws(() => checkHistoryRow(3, '00000002.history', ''), /unexpected history file name for timeline 3/);
  assert.throws(() => checkHistoryRow(2, '00000002.history', null), ProtocolError);
});

test('slot names are checked as the server checks them, before anything is sent', () => {
  validateSlotName('standby_1');
  validateSlotName('x'.repeat(63));
  assert.throws(() => validateSlotName(''), UsageError);
  assert.throws(() => validateSlotName('x'.repeat(64)), /too long/);
  assert.throws(() => validateSlotName('Standby'), /invalid character/);
  assert.throws(() => validateSlotName('a"; DROP'), /invalid character/);
  assert.throws(() => startReplicationCommand(0n, 1, 'bad-name'), UsageError);
});
