// Jobs: filter by state and worker, page through (newest first), open one (#/jobs/ID).

import * as api from './api.js';
import { h, replace, table, jobLink, stateBadge, when, num, bits, coalesce } from './dom.js';
import { jobView } from './jobview.js';

const STATES = ['queued', 'dispatched', 'running', 'succeeded', 'failed', 'timed_out', 'worker_lost', 'cancelled'];
const PAGE = 25;

export function workerNames(workers) {
  const m = new Map();
  for (const w of workers) m.set(w.worker_id, w.pod_name);
  return m;
}

function summary(rec) {
  const r = rec.result;
  if (!r) return rec.reason || '';
  switch (r.kind) {
    case 'ping': return 'rtt ' + num(r.rtt_avg_ms, 3) + ' ms, loss ' + num(r.loss_percent, 0) + ' %';
    case 'traceroute': return r.hops.length + ' hops' + (r.reached ? '' : ', not reached');
    case 'iperf3': return bits(r.receiver_bits_per_second);
    case 'noop': return 'slept ' + r.slept_ms + ' ms';
    default: return '';
  }
}

export function jobsTable(jobs, names) {
  const who = (id) => (id && names.get(id)) || id || '–';
  const rows = jobs.map((j) => h('tr', { 'data-job': j.job_id },
    h('td', { class: 'mono' }, jobLink(j.job_id)),
    h('td', {}, j.params.kind),
    h('td', {}, stateBadge(j.state)),
    h('td', {}, who(j.source_worker)),
    h('td', {}, j.target_worker ? who(j.target_worker) : j.target && j.target.address ? j.target.address : '–'),
    h('td', {}, when(j.created_at_ms)),
    h('td', { class: 'num' }, j.finished_at_ms && j.started_at_ms ? (j.finished_at_ms - j.started_at_ms) + ' ms' : '–'),
    h('td', {}, summary(j))));
  return table(['job', 'kind', 'state', 'source', 'target', 'created', 'took', 'result'], rows, { class: 'jobs' });
}

export async function render(main, params, { signal, bus }) {
  const names = workerNames(await api.workers(signal).catch(() => []));
  if (params[0]) {
    const el = h('section', { id: 'job' });
    main.append(h('p', {}, h('a', { href: '#/jobs' }, '← all jobs')), el);
    jobView(el, params[0], signal, names);
    return;
  }
  const state = h('select', { id: 'filter-state' }, h('option', { value: '' }, 'any state'),
    STATES.map((st) => h('option', { value: st }, st)));
  const worker = h('select', { id: 'filter-worker' }, h('option', { value: '' }, 'any worker'),
    [...names].sort((a, b) => a[1].localeCompare(b[1])).map(([id, pod]) => h('option', { value: id }, pod)));
  const newer = h('button', { type: 'button', id: 'page-newer' }, '← newer');
  const older = h('button', { type: 'button', id: 'page-older' }, 'older →');
  const where = h('span', { class: 'muted', id: 'page-info' });
  const list = h('div', { id: 'jobs-list' });
  main.append(h('h1', {}, 'Jobs'),
    h('div', { class: 'toolbar' }, h('label', {}, 'State ', state), h('label', {}, 'Worker ', worker),
      h('span', { class: 'pager' }, newer, where, older)), list);
  // Each page starts at an `until_ms` (inclusive) and skips the jobs of that millisecond
  // already shown on the page before it.
  let pages = [{ until: null, skip: [] }];
  let current = [];
  let seq = 0; // only the latest request's answer is shown
  const load = async () => {
    const mine = ++seq;
    const p = pages[pages.length - 1];
    const q = new URLSearchParams({ limit: String(PAGE + p.skip.length) });
    if (state.value) q.set('state', state.value);
    if (worker.value) q.set('worker', worker.value);
    if (p.until !== null) q.set('until_ms', String(p.until));
    const jobs = (await api.get('/api/v2/jobs?' + q, signal)).jobs
      .filter((j) => !p.skip.includes(j.job_id)).slice(0, PAGE);
    if (mine !== seq) return;
    current = jobs;
    newer.disabled = pages.length === 1;
    older.disabled = jobs.length < PAGE;
    where.textContent = 'page ' + pages.length;
    replace(list, jobs.length ? jobsTable(jobs, names) : h('p', { class: 'muted', id: 'no-jobs' }, 'No job matches.'));
  };
  const restart = () => { pages = [{ until: null, skip: [] }]; load(); };
  state.addEventListener('change', restart);
  worker.addEventListener('change', restart);
  older.addEventListener('click', () => {
    const last = current[current.length - 1];
    if (!last) return;
    const t = last.created_at_ms;
    pages.push({ until: t, skip: current.filter((j) => j.created_at_ms === t).map((j) => j.job_id) });
    load();
  });
  newer.addEventListener('click', () => { if (pages.length > 1) { pages.pop(); load(); } });
  bus.on('job_done', coalesce(() => { if (pages.length === 1) load().catch(() => {}); }, 1000));
  await load();
}
