/**
 * A hand-made SVG bar chart: for each mode, a pgbb bar and a pg_basebackup
 * bar (median wall seconds), horizontal, on one shared scale.
 */

export interface ChartRow {
  label: string;
  pgbb: number;
  pgBasebackup: number;
}

const COLORS = { pgbb: '#d95f02', pgBasebackup: '#1b9e77' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function barChart(title: string, rows: ChartRow[], unit = 's'): string {
  const labelW = 250;
  const plotW = 420;
  const bar = 16;
  const groupH = 2 * bar + 14;
  const top = 56;
  const height = top + rows.length * groupH + 36;
  const width = labelW + plotW + 70;
  const max = Math.max(1e-9, ...rows.flatMap((r) => [r.pgbb, r.pgBasebackup]));
  const x = (v: number) => (v / max) * plotW;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<rect x="${labelW}" y="30" width="12" height="12" fill="${COLORS.pgbb}"/><text x="${labelW + 16}" y="40">pgbb</text>`,
    `<rect x="${labelW + 70}" y="30" width="12" height="12" fill="${COLORS.pgBasebackup}"/><text x="${labelW + 86}" y="40">pg_basebackup</text>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * groupH;
    out.push(`<text x="${labelW - 8}" y="${y + bar + 4}" text-anchor="end">${esc(r.label.replace(/`/g, ''))}</text>`);
    ([['pgbb', r.pgbb], ['pgBasebackup', r.pgBasebackup]] as const).forEach(([who, v], j) => {
      const by = y + j * bar;
      out.push(`<rect x="${labelW}" y="${by}" width="${x(v).toFixed(1)}" height="${bar - 2}" fill="${COLORS[who]}"/>`);
      out.push(`<text x="${(labelW + x(v) + 4).toFixed(1)}" y="${by + bar - 4}">${v.toFixed(2)} ${unit}</text>`);
    });
  });
  const axisY = top + rows.length * groupH + 4;
  out.push(`<line x1="${labelW}" y1="${axisY}" x2="${labelW + plotW}" y2="${axisY}" stroke="#888"/>`);
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    out.push(`<text x="${(labelW + x(v)).toFixed(1)}" y="${axisY + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}</text>`);
  }
  out.push(`<text x="${labelW + plotW + 8}" y="${axisY + 16}" fill="#555">${unit} (median wall)</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}
