/** Grouped bars of ops/s (watch: events/s) per scenario, one bar per client, as a standalone SVG. */
import type { ScenarioSummary } from "./report.js";
import { formatNumber } from "./report.js";

const COLORS = ["#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#64748b"];
const BAR = 14;
const GROUP_GAP = 18;
const PLOT_TOP = 60;
const PLOT_HEIGHT = 320;
const LEFT = 70;

const escape = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A round axis maximum at or above `value`, so that the five gridlines fall on round numbers. */
function niceMax(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((m) => m * power).find((v) => v >= value) ?? value;
}

export function renderChart(summaries: ScenarioSummary[], title: string): string {
  const groups = summaries.filter((s) => s.clients.some((c) => c.median.opsPerSec !== undefined));
  const clients = [...new Set(groups.flatMap((s) => s.clients.filter((c) => c.median.opsPerSec !== undefined).map((c) => c.label)))];
  const groupWidth = clients.length * BAR + GROUP_GAP;
  const width = LEFT + Math.max(1, groups.length) * groupWidth + 20;
  const height = PLOT_TOP + PLOT_HEIGHT + 80;
  const max = niceMax(Math.max(1, ...groups.flatMap((s) => s.clients.map((c) => c.median.opsPerSec ?? 0))));
  const y = (v: number) => PLOT_TOP + PLOT_HEIGHT * (1 - v / max);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${escape(title)}</text>`,
  ];
  clients.forEach((label, i) => {
    const x = LEFT + i * 150;
    parts.push(`<rect x="${x}" y="32" width="10" height="10" fill="${COLORS[i % COLORS.length]}"/>`, `<text x="${x + 14}" y="41">${escape(label)}</text>`);
  });
  for (let step = 0; step <= 5; step++) {
    const value = (max * step) / 5;
    parts.push(
      `<line x1="${LEFT}" x2="${width - 10}" y1="${y(value)}" y2="${y(value)}" stroke="#e5e7eb"/>`,
      `<text x="${LEFT - 6}" y="${y(value) + 4}" text-anchor="end">${formatNumber(value)}</text>`,
    );
  }
  groups.forEach((summary, g) => {
    const x0 = LEFT + g * groupWidth + GROUP_GAP / 2;
    clients.forEach((label, i) => {
      const value = summary.clients.find((c) => c.label === label)?.median.opsPerSec;
      if (value === undefined) return;
      const x = x0 + i * BAR;
      parts.push(
        `<rect x="${x}" y="${y(value)}" width="${BAR - 2}" height="${PLOT_TOP + PLOT_HEIGHT - y(value)}" fill="${COLORS[i % COLORS.length]}"><title>${escape(`${summary.id} ${label}: ${formatNumber(value)}/s`)}</title></rect>`,
      );
    });
    const cx = x0 + (clients.length * BAR) / 2;
    const ly = PLOT_TOP + PLOT_HEIGHT + 12;
    parts.push(`<text x="${cx}" y="${ly}" text-anchor="end" transform="rotate(-40 ${cx} ${ly})">${escape(summary.id)}</text>`);
  });
  parts.push(
    `<line x1="${LEFT}" x2="${width - 10}" y1="${PLOT_TOP + PLOT_HEIGHT}" y2="${PLOT_TOP + PLOT_HEIGHT}" stroke="#111"/>`,
    `<text x="14" y="${PLOT_TOP + PLOT_HEIGHT / 2}" transform="rotate(-90 14 ${PLOT_TOP + PLOT_HEIGHT / 2})" text-anchor="middle">ops/s (watch: events/s)</text>`,
    "</svg>",
  );
  return parts.join("\n");
}
