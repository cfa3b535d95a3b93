import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTablespaceMap } from '../../../src/codec/tablespace-map';

test('tablespace_map: one "<oid> <location>" line each, backslash escapes as PostgreSQL 15 writes them', () => {
  assert.deepEqual(parseTablespaceMap('16384 /srv/ts one\n16385 /srv/a\\\nb\\\\c\n'), [
    { oid: '16384', location: '/srv/ts one' },
    { oid: '16385', location: '/srv/a\nb\\c' },
  ]);
  assert.deepEqual(parseTablespaceMap(''), []);
});

test('tablespace_map: a malformed line or a twice-listed OID is refused, naming the line', () => {
  assert.throws(() => parseTablespaceMap('16384 /a\nx /b\n'), /line 2 is not "<oid> <location>"/);
  assert.throws(() => parseTablespaceMap('16384 \n'), /line 1/);
  assert.throws(() => parseTablespaceMap('1 /a\n1 /b\n'), /lists tablespace 1 twice/);
});
