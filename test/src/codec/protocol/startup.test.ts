import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startupPacket } from '../../../../src/codec/protocol/startup';

test('startup packet: protocol 3.0, key/value pairs, no client_encoding, length-prefixed', () => {
  const p = startupPacket({ user: 'postgres', database: 'x', replication: 'true', client_encoding: 'UTF8', application_name: 'pgbb' });
  assert.equal(p.readUInt32BE(0), p.length);
  assert.equal(p.readUInt32BE(4), 0x00030000);
  assert.equal(p.subarray(8).toString('utf8'), 'user\0postgres\0database\0x\0replication\0true\0application_name\0pgbb\0\0');
  assert.ok(!p.includes('client_encoding'));
});
