// Plain SVG charts: a line (with its points) or bars over x, with axes and a few ticks.

import { s } from './dom.js';

const W = 640, H = 240, L = 56, R = 16, T = 14, B = 36;

function ticks(max, n) {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((st) => st >= raw);
  const out = [];
  for (let v = 0; v <= max + step / 2; v += step) out.push(v);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

// points: [{x, y, label}]; opts: {kind: 'line'|'bar', xLabel, yLabel, yFormat, id}.
export function chart(points, opts) {
  const fmt = opts.yFormat || ((v) => String(+v.toPrecision(3)));
  const ys = ticks(Math.max(...points.map((p) => p.y), 0), 4);
  const yMax = ys[ys.length - 1] || 1;
  const xMin = Math.min(...points.map((p) => p.x));
  const xMax = Math.max(...points.map((p) => p.x));
  const bar = opts.kind === 'bar';
  const slots = bar ? points.length : Math.max(xMax - xMin, 1);
  const px = (i, x) => (bar
    ? L + ((i + 0.5) * (W - L - R)) / slots
    : L + ((x - xMin) * (W - L - R)) / slots);
  const py = (y) => T + (H - T - B) * (1 - y / yMax);
  const svg = s('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', id: opts.id,
    role: 'img', 'aria-label': opts.yLabel + ' by ' + opts.xLabel,
    'data-points': points.length,
  });
  for (const v of ys) {
    svg.append(s('line', { class: 'gridline', x1: L, x2: W - R, y1: py(v), y2: py(v) }));
    svg.append(s('text', { x: L - 6, y: py(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  }
  svg.append(s('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }));
  svg.append(s('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }));
  const every = Math.ceil(points.length / 12);
  points.forEach((p, i) => {
    if (i % every === 0) {
      svg.append(s('text', { x: px(i, p.x), y: H - B + 14, 'text-anchor': 'middle' }, p.x));
    }
  });
  svg.append(s('text', { x: (L + W - R) / 2, y: H - 4, 'text-anchor': 'middle' }, opts.xLabel));
  svg.append(s('text', { x: 12, y: (T + H - B) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${(T + H - B) / 2})` }, opts.yLabel));
  if (bar) {
    const bw = Math.max(1, ((W - L - R) / slots) * 0.7);
    points.forEach((p, i) => {
      svg.append(s('rect', { class: 'bar', x: px(i) - bw / 2, y: py(p.y), width: bw,
        height: Math.max(0, H - B - py(p.y)) }, s('title', {}, p.label || fmt(p.y))));
    });
  } else {
    const d = points.map((p, i) => (i ? 'L' : 'M') + px(i, p.x) + ' ' + py(p.y)).join(' ');
    svg.append(s('path', { class: 'series', d }));
    for (const [i, p] of points.entries()) {
      svg.append(s('circle', { class: 'dot', cx: px(i, p.x), cy: py(p.y), r: 2.5 },
        s('title', {}, p.label || fmt(p.y))));
    }
  }
  return svg;
}
