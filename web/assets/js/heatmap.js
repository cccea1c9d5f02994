// The node×node (or pod×pod) heatmap of a matrix run: one SVG cell per source → target, its
// colour the metric's median on a green (good) → red (bad) scale; hovering a cell shows its
// details (median, min–max, samples, job ids with links), clicking pins them. The nodes and pairs
// named by the latest health findings (health.js `marks`) are marked: a label or a cell gets the
// class `fault` and a tooltip (`<title>`) with the findings' messages.

import { h, s, replace, jobLink } from './dom.js';

export const GRIDS = {
  node: { label: 'node × node (pods)', keep: (p) => p.class === 'pod_same_node' || p.class === 'pod_cross_node', row: (p) => p.source_node, col: (p) => p.target_node },
  host: { label: 'node × node (host network)', keep: (p) => p.class === 'node_to_node', row: (p) => p.source_node, col: (p) => p.target_node },
  pod: { label: 'pod × pod', keep: () => true, row: (p) => p.source_pod, col: (p) => p.target_pod },
};

function median(xs) {
  const v = xs.slice().sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// The cells of `pairs` in `grid` for metric `key`: {rows, cols, cells: Map("r\0c" → cell)}.
export function cells(pairs, grid, key) {
  const g = GRIDS[grid];
  const rows = new Set(), cols = new Set(), acc = new Map();
  for (const p of pairs.filter(g.keep)) {
    const r = g.row(p), c = g.col(p);
    rows.add(r); cols.add(c);
    const k = r + '\u0000' + c;
    if (!acc.has(k)) acc.set(k, { row: r, col: c, pairs: [], medians: [], min: Infinity, max: -Infinity, samples: 0, job_ids: [], failed: 0 });
    const cell = acc.get(k);
    cell.pairs.push(p.source_pod + ' → ' + p.target_pod);
    cell.job_ids.push(...(p.job_ids || []));
    cell.failed += p.jobs_failed || 0;
    const v = p[key];
    const sp = typeof v === 'number' ? { median: v, min: v, max: v, samples: 1 } : v;
    if (sp) {
      cell.medians.push(sp.median);
      cell.min = Math.min(cell.min, sp.min);
      cell.max = Math.max(cell.max, sp.max);
      cell.samples += sp.samples;
    }
  }
  for (const cell of acc.values()) cell.median = cell.medians.length ? median(cell.medians) : undefined;
  const all = [...rows, ...cols];
  const names = [...new Set(all)].sort();
  return { rows: names.filter((n) => rows.has(n)), cols: names.filter((n) => cols.has(n)), cells: acc };
}

function colour(t) {
  return 'hsl(' + Math.round(120 * (1 - t)) + ', 65%, 48%)';
}

// The heatmap element for `report`, metric `m` (from report.js METRICS), grid `grid`, with the
// `faults` of health.js `marks` (optional).
export function heatmap(report, m, grid, faults) {
  const { rows, cols, cells: cs } = cells(report.pairs, grid, m.key);
  const marks = faults || { nodes: new Map(), pairs: new Map() };
  // The node of a label: itself, or in the pod grid its pod's node.
  const nodeOf = new Map();
  for (const p of report.pairs) { nodeOf.set(p.source_pod, p.source_node); nodeOf.set(p.target_pod, p.target_node); }
  const node = (label) => (grid === 'pod' ? nodeOf.get(label) : label);
  const mark = (el, messages) => {
    if (!messages || !messages.length) return el;
    el.classList.add('fault');
    el.append(s('title', {}, messages.join('\n')));
    return el;
  };
  const vals = [...cs.values()].map((c) => c.median).filter((v) => v !== undefined);
  const lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
  const t = (v) => {
    const x = hi > lo ? (v - lo) / (hi - lo) : 0;
    return m.better === 'high' ? 1 - x : x;
  };
  const n = Math.max(rows.length, cols.length, 1);
  const size = Math.max(10, Math.min(40, Math.floor(800 / n)));
  const font = Math.min(11, size - 1);
  const labelW = 14 + font * 0.72 * Math.max(4, ...rows.concat(cols).map((x) => Math.min(x.length, 28)));
  const W = Math.max(labelW + cols.length * size + 10, labelW + 420), H = labelW + rows.length * size + 60;
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, id: 'heatmap',
    'data-rows': rows.length, 'data-cols': cols.length, role: 'img', 'aria-label': m.label + ' heatmap' });
  const clip = (x) => (x.length > 28 ? x.slice(0, 27) + '…' : x);
  rows.forEach((r, i) => svg.append(mark(s('text', { x: labelW - 4, y: labelW + i * size + size / 2 + font / 3,
    'text-anchor': 'end', 'font-size': font, class: 'row-label' }, clip(r)), marks.nodes.get(node(r)))));
  cols.forEach((c, j) => {
    const x = labelW + j * size + size / 2 + font / 3, y = labelW - 4;
    svg.append(mark(s('text', { x, y, 'font-size': font, transform: `rotate(-90 ${x} ${y})`, class: 'col-label' }, clip(c)),
      marks.nodes.get(node(c))));
  });
  const byIndex = [];
  const frag = document.createDocumentFragment();
  rows.forEach((r, i) => cols.forEach((c, j) => {
    const cell = cs.get(r + '\u0000' + c);
    if (!cell) return;
    const fill = cell.median === undefined ? '#e3e6ea' : colour(t(cell.median));
    frag.append(mark(s('rect', { class: 'cell', x: labelW + j * size, y: labelW + i * size,
      width: size - 1, height: size - 1, fill, 'data-i': byIndex.length }),
    marks.pairs.get(node(r) + '\u0000' + node(c))));
    byIndex.push(cell);
  }));
  svg.append(frag);
  // The colour scale.
  const ly = labelW + rows.length * size + 16;
  const defs = s('defs', {}, s('linearGradient', { id: 'scale' },
    [0, 0.5, 1].map((o) => s('stop', { offset: o, 'stop-color': colour(m.better === 'high' ? 1 - o : o) }))));
  svg.append(defs, s('rect', { x: labelW, y: ly, width: 160, height: 10, fill: 'url(#scale)' }),
    s('text', { x: labelW, y: ly + 24, id: 'scale-min' }, vals.length ? m.fmt(lo) : '–'),
    s('text', { x: labelW + 160, y: ly + 24, 'text-anchor': 'end', id: 'scale-max' }, vals.length ? m.fmt(hi) : '–'),
    s('text', { x: labelW + 170, y: ly + 9 }, m.label + ' (median; grey: not measured)'));

  const details = h('div', { class: 'details', id: 'cell-details' },
    h('p', { class: 'muted' }, 'Hover a cell for its figures; click to pin it.'));
  let pinned = null;
  const show = (cell) => replace(details,
    h('h3', {}, cell.row + ' → ' + cell.col),
    h('p', {}, 'median ', h('b', { class: 'cell-median' }, cell.median === undefined ? '–' : m.fmt(cell.median))),
    h('p', {}, 'min–max ', cell.median === undefined ? '–' : m.fmt(cell.min) + ' – ' + m.fmt(cell.max)),
    h('p', {}, 'samples ', String(cell.samples), cell.failed ? ', failed jobs ' + cell.failed : ''),
    h('p', { class: 'muted' }, cell.pairs.length + ' pair(s): ' + cell.pairs.slice(0, 6).join(', ') + (cell.pairs.length > 6 ? ', …' : '')),
    h('p', {}, 'jobs:'),
    h('ul', { class: 'cell-jobs' }, cell.job_ids.map((id) => h('li', {}, jobLink(id, id)))));
  svg.addEventListener('mouseover', (ev) => {
    const i = ev.target.dataset && ev.target.dataset.i;
    if (i !== undefined && !pinned) show(byIndex[+i]);
  });
  svg.addEventListener('click', (ev) => {
    const i = ev.target.dataset && ev.target.dataset.i;
    if (pinned) pinned.classList.remove('pinned');
    if (i === undefined || pinned === ev.target) { pinned = null; return; }
    pinned = ev.target;
    pinned.classList.add('pinned');
    show(byIndex[+i]);
  });
  return h('div', { class: 'heat' }, svg, details);
}
