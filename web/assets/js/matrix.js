// Matrix: start a run (mesh, samples, duration, UDP); follow one (#/matrix/RUN): a progress bar
// while it runs, the comparison table with the overlay cost, and the heatmap.

import * as api from './api.js';
import { h, replace, table, link, coalesce } from './dom.js';
import { comparison, METRICS } from './report.js';
import { heatmap, GRIDS } from './heatmap.js';
import * as health from './health.js';

function numberField(id, label, min, max, value) {
  return [h('label', { for: id }, label), h('span', {},
    h('input', { id, type: 'number', min, max, step: 1, value, required: true }),
    h('span', { class: 'muted' }, ' ' + min + '–' + max))];
}

function checkField(id, label, checked) {
  return [h('label', { for: id }, label), h('span', {}, h('input', { id, type: 'checkbox', checked }))];
}

// An optional decimal (empty: off), checked by the dispatcher as by the CLI.
function gateField(id, label, hint) {
  return [h('label', { for: id }, label), h('span', {},
    h('input', { id, type: 'text', inputmode: 'decimal', placeholder: 'off', class: 'gate', size: 8 }),
    h('span', { class: 'muted' }, ' ' + hint))];
}

function startForm() {
  const error = h('p', { class: 'error wide', id: 'matrix-error' });
  const form = h('form', { class: 'grid', id: 'matrix-form', novalidate: true },
    checkField('mesh', 'mesh (every pod pair and node pair)', true),
    numberField('samples', 'samples', 1, 20, 3),
    checkField('samples_auto', 'samples auto (add samples until the 95 % CI is within ±5 %, at most 20)', false),
    numberField('ping_count', 'pings per sample', 1, 1000, 20),
    numberField('iperf3_duration_s', 'iperf3 duration (s)', 1, 60, 5),
    checkField('udp', 'UDP test (jitter, loss)', false),
    numberField('udp_bitrate_bps', 'UDP bitrate (bit/s)', 1, 100000000000, 1000000000),
    checkField('traceroute', 'traceroute (hop count)', true),
    checkField('latency', 'latency (sockperf ping-pong: p50, p99)', true),
    numberField('latency_duration_s', 'latency test duration (s)', 1, 60, 1),
    checkField('mtu', 'path MTU (tracepath, DF ping)', true),
    gateField('tolerance_percent', 'gate: TCP tolerance (%)', 'fail when pods across nodes are more than this below node ↔ node'),
    gateField('max_rtt_ratio', 'gate: max RTT ratio', 'fail when pods across nodes have more than this × the node ↔ node RTT'),
    h('span', { class: 'wide' }, h('button', { type: 'submit', id: 'matrix-submit' }, 'Start')), error);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    const req = {};
    for (const id of ['mesh', 'samples_auto', 'udp', 'traceroute', 'latency', 'mtu']) req[id] = form.querySelector('#' + id).checked;
    for (const el of form.querySelectorAll('input.gate')) {
      if (el.value.trim() === '') continue;
      const v = Number(el.value);
      if (!Number.isFinite(v)) {
        error.textContent = el.id + ': ' + el.value + ' is not a number';
        return;
      }
      req[el.id] = v;
    }
    for (const el of form.querySelectorAll('input[type=number]')) {
      const v = Number(el.value);
      if (!Number.isInteger(v) || v < +el.min || v > +el.max) {
        error.textContent = el.id + ': ' + el.value + ' is out of bounds (' + el.min + '..=' + el.max + ')';
        return;
      }
      req[el.id] = v;
    }
    try {
      const started = await api.post('/api/v2/runs', req);
      location.hash = '#/matrix/' + started.run_id;
    } catch (e) {
      error.textContent = String(e);
    }
  });
  return form;
}

async function runList(signal) {
  const runs = (await api.get('/api/v2/runs?limit=10', signal)).runs;
  if (!runs.length) return h('p', { class: 'muted' }, 'No run yet.');
  return table(['run', 'started', 'pairs', 'jobs done', 'state'], runs.map((r) => h('tr', {},
    h('td', { class: 'mono' }, link('#/matrix/' + r.run_id, r.run_id.slice(0, 8))),
    h('td', {}, new Date(r.created_at_ms).toLocaleString()),
    h('td', { class: 'num' }, r.pairs),
    h('td', { class: 'num' }, r.jobs_done + ' / ' + r.jobs),
    h('td', {}, r.finished ? 'finished' : 'running'))), { id: 'runs' });
}

export async function render(main, params, { signal }) {
  if (!params[0]) {
    main.append(h('h1', {}, 'Matrix'), h('p', { class: 'muted' },
      'Measures every path class (or, with mesh, every pair) with ping, iperf3, traceroute, a latency test and the path MTU, several samples each.'),
    startForm(), h('h2', {}, 'Recent runs'), await runList(signal));
    return;
  }
  const id = params[0];
  const bar = h('progress', { id: 'run-progress', max: 1, value: 0 });
  const label = h('span', { id: 'run-progress-label' });
  const tableBox = h('section', { id: 'run-table' });
  const heatBox = h('section', { id: 'run-heatmap' });
  const healthBox = h('div', { id: 'health-box' });
  main.append(h('p', {}, link('#/matrix', '← matrix')), h('h1', {}, 'Run ', h('span', { class: 'mono' }, id)),
    h('p', {}, bar, ' ', label), tableBox, healthBox, heatBox);
  let faults = health.marks(null);
  let report = null;
  const metric = h('select', { id: 'heat-metric' });
  const grid = h('select', { id: 'heat-grid' });
  const drawHeat = () => {
    const m = METRICS.find((x) => x.key === metric.value) || METRICS[0];
    replace(heatBox.querySelector('.heat-box'), heatmap(report, m, grid.value, faults));
  };
  // The latest health findings: a panel, and marks on the heatmap (redrawn once they are in).
  health.latest(signal).then((got) => {
    faults = health.marks(got);
    replace(healthBox, health.panel(got));
    if (report) drawHeat();
  }).catch((e) => replace(healthBox, h('p', { class: 'muted', id: 'health-panel', 'data-state': 'error' }, 'Health: ' + String(e))));
  metric.addEventListener('change', drawHeat);
  grid.addEventListener('change', drawHeat);
  let seq = 0; // only the latest report is drawn
  const load = async () => {
    if (heatBox.dataset.final) return; // the finished run's report is drawn: it cannot change
    const mine = ++seq;
    const got = await api.get('/api/v2/runs/' + encodeURIComponent(id), signal);
    if (mine !== seq) return;
    report = got;
    progress(report.progress);
    replace(tableBox, h('h2', {}, 'Comparison'), comparison(report));
    const keys = METRICS.filter((m) => report.pairs.some((p) => p[m.key]));
    const grids = Object.keys(GRIDS).filter((g) => report.pairs.some(GRIDS[g].keep));
    const keep = (sel, values, labelOf) => {
      const was = sel.value;
      replace(sel, values.map((v) => h('option', { value: v }, labelOf(v))));
      if (values.includes(was)) sel.value = was;
    };
    keep(metric, (keys.length ? keys : METRICS).map((m) => m.key), (k) => METRICS.find((m) => m.key === k).label);
    keep(grid, grids.length ? grids : ['pod'], (g) => GRIDS[g].label);
    if (!heatBox.querySelector('.heat-box')) {
      replace(heatBox, h('h2', {}, 'Heatmap'), h('div', { class: 'toolbar' },
        h('label', {}, 'metric ', metric), h('label', {}, 'grid ', grid)), h('div', { class: 'heat-box' }));
    }
    drawHeat();
    if (report.progress.finished) heatBox.dataset.final = 'true';
  };
  const progress = (p) => {
    bar.max = Math.max(p.jobs, 1);
    bar.value = p.jobs_done;
    bar.dataset.finished = p.finished;
    bar.dataset.jobs = p.jobs;
    label.textContent = p.jobs_done + ' / ' + p.jobs + ' jobs done (' + p.jobs_succeeded +
      ' succeeded), ' + p.pairs + ' pairs in ' + p.rounds + ' rounds' + (p.finished ? ' — finished' : '');
  };
  const later = coalesce(() => load().catch(() => {}), 1000);
  const stream = new AbortController();
  signal.addEventListener('abort', () => stream.abort());
  api.events('run=' + encodeURIComponent(id), (name, p) => {
    if (name !== 'run_progress') return;
    progress(p);
    later();
    if (p.finished) { stream.abort(); load().catch(() => {}); }
  }, stream.signal);
  await load();
}
