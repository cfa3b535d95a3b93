import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markdownTable } from '../../bench/support/markdown';
import { median } from '../../bench/support/stats';
import { barChart } from '../../bench/support/svg-chart';

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('markdown table: header, rule, rows; pipes in cells escaped', () => {
  assert.equal(markdownTable(['a', 'b'], [['1', 'x|y']]), '| a | b |\n|---|---|\n| 1 | x\\|y |');
});

test('chart: two bars per row on one scale, labels escaped, backticks dropped', () => {
  const svg = barChart('t <1>', [
    { label: '`-D -` → x & y', pgbb: 2, pgBasebackup: 1 },
    { label: 'plain', pgbb: 4, pgBasebackup: 3 },
  ]);
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /t &lt;1&gt;/);
  assert.match(svg, />-D - → x &amp; y</);
  const widths = [...svg.matchAll(/<rect x="250" y="\d+" width="([\d.]+)" height="14"/g)].map((m) => Number(m[1]));
  assert.deepEqual(widths, [210, 105, 420, 315]);
  assert.ok(svg.trimEnd().endsWith('</svg>'));
});
