// A matrix run's comparison table (one row per path class: medians, spreads, the `~` noisy
// flag) and the overlay cost, as the CLI prints them.

import { h, table, num, bits } from './dom.js';

export const CLASS_LABEL = {
  pod_same_node: 'pod ↔ pod, same node',
  pod_cross_node: 'pod ↔ pod, across nodes',
  node_to_node: 'node ↔ node',
};

// The metrics of a report, with how to show them; `better` says which way is good.
export const METRICS = [
  { key: 'rtt_avg_ms', label: 'RTT', unit: 'ms', fmt: (v) => num(v, 3) + ' ms', better: 'low' },
  { key: 'loss_percent', label: 'loss', fmt: (v) => num(v, 1) + ' %', better: 'low' },
  { key: 'tcp_bits_per_second', label: 'TCP bandwidth', fmt: bits, better: 'high' },
  { key: 'tcp_retransmits', label: 'retransmits', fmt: (v) => num(v, 0), better: 'low' },
  { key: 'udp_bits_per_second', label: 'UDP bandwidth', fmt: bits, better: 'high' },
  { key: 'udp_jitter_ms', label: 'UDP jitter', fmt: (v) => num(v, 3) + ' ms', better: 'low' },
  { key: 'udp_lost_percent', label: 'UDP loss', fmt: (v) => num(v, 2) + ' %', better: 'low' },
];

// One spread as a cell: the median, `~` when too noisy, min–max and samples in its title.
export function spreadCell(sp, m) {
  if (!sp) return h('td', { class: 'num muted' }, '–');
  const title = 'median ' + m.fmt(sp.median) + ', min–max ' + m.fmt(sp.min) + ' – ' +
    m.fmt(sp.max) + ', ' + sp.samples + ' samples' + (sp.wide ? ' (too noisy to trust)' : '');
  return h('td', { class: 'num' + (sp.wide ? ' wide' : ''), title },
    m.fmt(sp.median) + (sp.wide ? ' ~' : ''));
}

export function comparison(report) {
  const metrics = METRICS.filter((m) => report.classes.some((c) => c[m.key]));
  const rows = report.classes.map((c) => h('tr', { 'data-class': c.class },
    h('th', {}, CLASS_LABEL[c.class] || c.class),
    h('td', { class: 'num' }, c.pairs),
    metrics.map((m) => spreadCell(c[m.key], m)),
    h('td', { class: 'num' }, c.hops === undefined ? '–' : c.hops),
    h('td', { class: 'num' }, c.jobs_failed)));
  return h('div', { class: 'comparison' },
    table(['path', 'pairs', ...metrics.map((m) => m.label), 'hops', 'failed jobs']
      .map((t, i) => h('th', { class: i ? 'num' : '' }, t)), rows, { id: 'comparison' }),
    h('p', { class: 'muted' }, 'Medians over the samples; ~ marks a spread (max − min) / median above 25 %: too noisy to trust. Hover a cell for min–max and samples.'),
    overlay(report.overlay_cost));
}

function ratio(r, what, more, less) {
  const pct = Math.round(Math.abs(r - 1) * 100);
  return what + ' ×' + num(r, 2) + ' (' + pct + ' % ' + (r >= 1 ? more : less) + ')';
}

export function overlay(cost) {
  if (!cost || (cost.bandwidth_ratio === undefined && cost.rtt_ratio === undefined)) {
    return h('p', { id: 'overlay-cost', class: 'muted' },
      'Overlay cost: needs pod ↔ pod across nodes and node ↔ node (host-network) pairs.');
  }
  const parts = [];
  if (cost.bandwidth_ratio !== undefined) parts.push(ratio(cost.bandwidth_ratio, 'bandwidth', 'more', 'less'));
  if (cost.rtt_ratio !== undefined) parts.push(ratio(cost.rtt_ratio, 'RTT', 'more', 'less'));
  return h('p', { id: 'overlay-cost' }, h('b', {}, 'Overlay cost'),
    ' (pods across nodes against node ↔ node): ', parts.join(', '));
}
