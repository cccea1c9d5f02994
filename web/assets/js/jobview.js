// One job, live: its state going queued → dispatched → running → terminal (from the
// `?job=ID` event stream), then its result: ping RTT per reply as a chart, traceroute hops as
// a table, iperf3 bandwidth per interval as a chart.

import * as api from './api.js';
import { h, replace, table, num, bits, stateBadge, when } from './dom.js';
import { chart } from './chart.js';

const STEPS = ['queued', 'dispatched', 'running'];
const RANK = { queued: 0, dispatched: 1, running: 2 };
const rank = (st) => (st in RANK ? RANK[st] : 3);

// Renders job `id` into `el` and follows it until it ends or `signal` aborts. `names` maps
// worker ids to pod names.
export function jobView(el, id, signal, names) {
  const view = { rec: null, state: 'queued' };
  const head = h('div', { class: 'job-head' });
  const steps = h('div', { class: 'steps', id: 'job-steps' });
  const body = h('div', { class: 'job-body' });
  replace(el, head, steps, body);
  const stream = new AbortController();
  signal.addEventListener('abort', () => stream.abort());
  const update = (rec) => {
    if (view.rec && rank(rec.state) < rank(view.rec.state)) return;
    view.rec = rec;
    view.state = rec.state;
    draw(view, head, steps, body, names);
    if (rank(rec.state) === 3) stream.abort();
  };
  api.events('job=' + encodeURIComponent(id), (name, data) => {
    if (name === 'job' || name === 'job_done') update(data);
    else if (name === 'job_event' && data.event === 'started' && view.rec) {
      update(Object.assign({}, view.rec, { state: 'running', started_at_ms: data.at_ms }));
    } else if (name === 'job_result' && view.rec && rank(view.rec.state) < 3) {
      // The stored record (job_done) follows; show the measurement already.
      update(Object.assign({}, view.rec, { state: 'running', result: data.result }));
    }
  }, stream.signal);
  return view;
}

function who(names, id) {
  return (names && names.get(id)) || id;
}

function target(rec, names) {
  if (!rec.target) return '–';
  if (rec.target.worker !== undefined) {
    return who(names, rec.target_worker || rec.target.worker) + (rec.target_ip ? ' (' + rec.target_ip + ')' : '');
  }
  return String(rec.target.address);
}

function draw(view, head, steps, body, names) {
  const rec = view.rec;
  replace(head,
    h('h1', {}, rec.params.kind + ' ', h('span', { class: 'mono muted' }, rec.job_id), ' ',
      h('span', { id: 'job-state' }, stateBadge(rec.state))),
    table(['source', 'target', 'created', 'started', 'finished', 'attempts'], [h('tr', {},
      h('td', { id: 'job-source' }, who(names, rec.source_worker)),
      h('td', {}, target(rec, names)),
      h('td', {}, when(rec.created_at_ms)),
      h('td', {}, when(rec.started_at_ms)),
      h('td', {}, when(rec.finished_at_ms)),
      h('td', { class: 'num' }, rec.attempts))]),
    h('p', { class: 'muted' }, 'parameters: ', h('code', {}, JSON.stringify(rec.params))));
  const r = rank(rec.state);
  replace(steps, STEPS.map((st, i) => h('span', {
    class: i < r ? 'done' : i === r ? 'current' : '' }, st)),
  h('span', { class: r === 3 ? 'current' : '' }, r === 3 ? rec.state : 'finished'));
  replace(body);
  if (rec.reason || rec.message) {
    body.append(h('p', { class: 'error', id: 'job-message' },
      [rec.reason, rec.message].filter(Boolean).join(': ')));
  }
  if (rec.result) body.append(result(rec.result, rec.raw_output));
  if (rec.raw_output) {
    body.append(h('details', {}, h('summary', {}, 'tool output'),
      h('pre', { id: 'raw-output' }, rec.raw_output)));
  }
}

function result(res, raw) {
  switch (res.kind) {
    case 'ping': return ping(res);
    case 'traceroute': return traceroute(res);
    case 'iperf3': return iperf3(res, raw);
    case 'noop': return h('p', {}, 'slept ' + res.slept_ms + ' ms');
    default: return h('pre', {}, JSON.stringify(res, null, 2));
  }
}

function ping(r) {
  const out = h('section', { id: 'ping-result' }, h('h2', {}, 'RTT per reply'));
  out.append(table(['sent', 'received', 'loss', 'min', 'avg', 'max', 'mdev'], [h('tr', {},
    h('td', { class: 'num' }, r.transmitted), h('td', { class: 'num' }, r.received),
    h('td', { class: 'num' }, num(r.loss_percent, 1) + ' %'),
    ...[r.rtt_min_ms, r.rtt_avg_ms, r.rtt_max_ms, r.rtt_mdev_ms].map((v) =>
      h('td', { class: 'num' }, num(v, 3) + ' ms')))]));
  if (r.replies.length) {
    out.append(chart(r.replies.map((p) => ({ x: p.seq, y: p.rtt_ms,
      label: 'icmp_seq ' + p.seq + ': ' + p.rtt_ms + ' ms' })),
    { kind: 'line', xLabel: 'icmp_seq', yLabel: 'RTT (ms)', id: 'ping-chart' }));
  } else {
    out.append(h('p', { class: 'muted' }, 'no reply'));
  }
  return out;
}

function traceroute(r) {
  const rows = r.hops.map((hop) => h('tr', {},
    h('td', { class: 'num' }, hop.ttl),
    h('td', { class: 'mono' }, hop.probes.map((p) => p.address || '*').filter((a, i, all) => all.indexOf(a) === i).join(', ')),
    h('td', { class: 'num' }, hop.probes.map((p) => (p.rtt_ms === undefined ? '*' : num(p.rtt_ms, 3))).join(' / ')),
    h('td', {}, hop.probes.map((p) => p.annotation).filter(Boolean).join(' '))));
  return h('section', { id: 'traceroute-result' },
    h('h2', {}, 'Hops to ' + r.target + (r.reached ? '' : ' (not reached)')),
    table(['TTL', 'address', 'RTT (ms)', 'note'], rows, { id: 'hops' }));
}

// iperf3's own intervals, read from its JSON output (the typed result keeps the summary).
function intervals(raw) {
  try {
    const doc = JSON.parse(raw);
    return (doc.intervals || []).map((iv) => ({
      x: +(iv.sum.end).toFixed(1), y: iv.sum.bits_per_second,
      label: iv.sum.start.toFixed(1) + '–' + iv.sum.end.toFixed(1) + ' s: ' + bits(iv.sum.bits_per_second),
    }));
  } catch (_) {
    return [];
  }
}

function iperf3(r, raw) {
  const out = h('section', { id: 'iperf3-result' }, h('h2', {}, 'Bandwidth per interval'));
  out.append(table(['protocol', 'streams', 'duration', 'receiver', 'sender', 'retransmits', 'jitter', 'lost'],
    [h('tr', {}, h('td', {}, r.protocol + (r.reverse ? ' (reverse)' : '')),
      h('td', { class: 'num' }, r.streams), h('td', { class: 'num' }, num(r.duration_s, 1) + ' s'),
      h('td', { class: 'num' }, bits(r.receiver_bits_per_second)),
      h('td', { class: 'num' }, bits(r.sender_bits_per_second)),
      h('td', { class: 'num' }, r.retransmits === undefined ? '–' : r.retransmits),
      h('td', { class: 'num' }, r.jitter_ms === undefined ? '–' : num(r.jitter_ms, 3) + ' ms'),
      h('td', { class: 'num' }, r.lost_percent === undefined ? '–' : num(r.lost_percent, 2) + ' %'))]));
  const pts = raw ? intervals(raw) : [];
  if (pts.length) {
    out.append(chart(pts, { kind: 'bar', xLabel: 'seconds', yLabel: 'bandwidth',
      yFormat: bits, id: 'iperf3-chart' }));
  } else {
    out.append(h('p', { class: 'muted' }, 'no per-interval figures in the tool output'));
  }
  return out;
}
