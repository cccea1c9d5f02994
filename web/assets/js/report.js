// A matrix run's comparison table (one row per path class: medians, spreads, the `~` noisy
// flag, the latency percentiles and the path MTU), the overlay cost and the MTU problems, as
// the CLI prints them.

import { h, table, num, bits } from './dom.js';

export const CLASS_LABEL = {
  pod_same_node: 'pod ↔ pod, same node',
  pod_cross_node: 'pod ↔ pod, across nodes',
  pod_to_node: 'pod → node, across nodes',
  node_to_pod: 'node → pod, across nodes',
  node_to_node: 'node ↔ node',
};

// `--samples auto`: where a row's (or the run's) sampling stands.
const SAMPLING_LABEL = {
  sampling: 'still adding samples',
  converged: 'converged (95 % CI within ±5 % of the mean)',
  bound_reached: 'sample bound reached before ±5 %',
  stopped: 'stopped (the dispatcher adding samples went away)',
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
  // Shown in the table as the combined columns below; each on its own in the heatmap.
  { key: 'latency_p50_ms', label: 'latency p50 (TCP)', fmt: (v) => latencyMs(v) + ' ms', better: 'low', own: true },
  { key: 'latency_p99_ms', label: 'latency p99 (TCP)', fmt: (v) => latencyMs(v) + ' ms', better: 'low', own: true },
  { key: 'udp_latency_p50_ms', label: 'UDP latency p50', fmt: (v) => latencyMs(v) + ' ms', better: 'low', own: true },
  { key: 'udp_latency_p99_ms', label: 'UDP latency p99', fmt: (v) => latencyMs(v) + ' ms', better: 'low', own: true },
  { key: 'path_mtu_bytes', label: 'path MTU', fmt: (v) => num(v, 0) + ' B', better: 'high', own: true },
];

// Milliseconds with three significant digits below 1 ms (microseconds matter here), as the CLI.
function latencyMs(v, ref) {
  const r = ref === undefined ? v : ref;
  const d = r > 0 && r < 1 ? Math.min(Math.floor(-Math.log10(r)) + 3, 6) : 3;
  return num(v, d);
}

// `p50 / p99 ms` (the medians over the samples), `~` when either is too noisy to trust.
function latencyCell(p50, p99, kind) {
  if (!p50 || !p99) return h('td', { class: 'num muted', 'data-col': kind }, '–');
  const wide = p50.wide || p99.wide;
  const range = (sp) => latencyMs(sp.min, p50.median) + ' – ' + latencyMs(sp.max, p50.median);
  const title = 'p50 min–max ' + range(p50) + ' ms, p99 min–max ' + range(p99) + ' ms, ' +
    p50.samples + ' samples' + (wide ? ' (too noisy to trust)' : '');
  return h('td', { class: 'num' + (wide ? ' wide' : ''), 'data-col': kind, title },
    latencyMs(p50.median) + ' / ' + latencyMs(p99.median, p50.median) + ' ms' + (wide ? ' ~' : ''));
}

// The smallest path MTU measured, flagged when full-size DF packets were lost.
function mtuCell(c) {
  if (c.path_mtu_bytes === undefined) return h('td', { class: 'num muted', 'data-col': 'mtu' }, '–');
  const title = c.local_mtu_bytes !== undefined ? 'first-link MTU at the source: ' + c.local_mtu_bytes : undefined;
  return h('td', { class: 'num' + (c.mtu_black_hole ? ' bad' : ''), 'data-col': 'mtu', title },
    String(c.path_mtu_bytes), c.mtu_black_hole ? h('b', {}, ' BLACK HOLE') : '');
}

// The extra columns the run asked for: [header, cell(class)].
function extraColumns(report) {
  const q = report.request || {};
  const cols = [];
  if (q.latency) {
    cols.push(['latency p50 / p99', (c) => latencyCell(c.latency_p50_ms, c.latency_p99_ms, 'latency')]);
    if (q.udp) cols.push(['UDP latency p50 / p99', (c) => latencyCell(c.udp_latency_p50_ms, c.udp_latency_p99_ms, 'udp-latency')]);
  }
  if (q.mtu) cols.push(['path MTU', mtuCell]);
  return cols;
}

// The overlay MTU faults the run found (none: nothing).
export function mtuProblems(report) {
  const ps = report.mtu_problems || [];
  if (!ps.length) return null;
  return h('ul', { id: 'mtu-problems', class: 'problems' }, ps.map((p) => h('li', { 'data-kind': p.kind },
    h('b', {}, 'MTU problem'), ' (' + p.kind + '): ' + p.message)));
}

// `±h %`: the 95 % confidence interval's half-width as a share of the mean (as the CLI).
function ciShare(sp) {
  if (sp.ci95_low === undefined || sp.ci95_high === undefined || !sp.mean) return null;
  return Math.abs(sp.ci95_high - sp.ci95_low) / 2 / Math.abs(sp.mean) * 100;
}

// One spread as a cell: the median, `~` when too noisy, `±h %` of its 95 % confidence
// interval; min–max, the interval and samples in its title.
export function spreadCell(sp, m) {
  if (!sp) return h('td', { class: 'num muted' }, '–');
  const share = ciShare(sp);
  const ci = share === null ? '' : ', mean ' + m.fmt(sp.mean) + ', 95 % CI ' + m.fmt(sp.ci95_low) +
    ' – ' + m.fmt(sp.ci95_high);
  const title = 'median ' + m.fmt(sp.median) + ', min–max ' + m.fmt(sp.min) + ' – ' +
    m.fmt(sp.max) + ci + ', ' + sp.samples + ' samples' + (sp.wide ? ' (too noisy to trust)' : '');
  return h('td', { class: 'num' + (sp.wide ? ' wide' : ''), title },
    m.fmt(sp.median) + (sp.wide ? ' ~' : ''),
    share === null ? '' : h('span', { class: 'ci muted' }, ' ±' + num(share, share < 10 ? 1 : 0) + ' %'));
}

// The gate (`--tolerance`, `--max-rtt-ratio`): its verdict and each check's message.
export function verdict(report) {
  const v = report.verdict;
  if (!v) return null;
  const fail = v.status === 'fail';
  return h('div', { id: 'verdict', class: 'verdict' + (fail ? ' bad' : ''), 'data-status': v.status },
    h('b', {}, 'Verdict: ' + (fail ? 'FAIL' : 'PASS')),
    h('ul', {}, (v.checks || []).map((c) => h('li', { 'data-check': c.check, 'data-status': c.status },
      (c.status === 'fail' ? '✗ ' : '✓ ') + c.message))));
}

// `--samples auto`: the run's sampling state (and each row's in its tooltip).
function sampling(report) {
  if (!report.sampling) return null;
  const rows = report.classes.filter((c) => c.sampling)
    .map((c) => (CLASS_LABEL[c.class] || c.class) + ': ' + (SAMPLING_LABEL[c.sampling] || c.sampling));
  return h('p', { id: 'sampling', class: 'muted', title: rows.join('\n') },
    'Samples auto: ' + (SAMPLING_LABEL[report.sampling] || report.sampling) + '.');
}

export function comparison(report) {
  const metrics = METRICS.filter((m) => !m.own && report.classes.some((c) => c[m.key]));
  const extra = extraColumns(report);
  const rows = report.classes.map((c) => h('tr', { 'data-class': c.class },
    h('th', {}, CLASS_LABEL[c.class] || c.class),
    h('td', { class: 'num' }, c.pairs),
    metrics.map((m) => spreadCell(c[m.key], m)),
    h('td', { class: 'num' }, c.hops === undefined ? '–' : c.hops),
    extra.map(([, cell]) => cell(c)),
    h('td', { class: 'num' }, c.jobs_failed)));
  const heads = ['path', 'pairs', ...metrics.map((m) => m.label), 'hops', ...extra.map(([t]) => t), 'failed jobs'];
  return h('div', { class: 'comparison' },
    table(heads.map((t, i) => h('th', { class: i ? 'num' : '' }, t)), rows, { id: 'comparison' }),
    h('p', { class: 'muted' }, 'Medians over the samples; ±h % is the half-width of the 95 % confidence interval of the mean (Student\'s t) as a share of the mean; ~ marks a spread (max − min) / median above 25 %: too noisy to trust. Latency: full round trips (sockperf ping-pong). Hover a cell for min–max, the interval and samples.'),
    verdict(report), sampling(report), overlay(report.overlay_cost), mtuProblems(report));
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
