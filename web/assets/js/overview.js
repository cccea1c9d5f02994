// Overview: nodes and their workers (joining and leaving live), recent jobs, the latest
// matrix run's table and overlay cost.

import * as api from './api.js';
import { h, replace, table, ago, coalesce, every, link } from './dom.js';
import { jobsTable, workerNames } from './jobs.js';
import { comparison } from './report.js';

export async function render(main, _params, { signal, bus }) {
  const cards = h('div', { class: 'cards', id: 'summary' });
  const wsec = h('section', { id: 'workers' });
  const jsec = h('section', { id: 'recent-jobs' });
  const rsec = h('section', { id: 'latest-run' });
  main.append(h('h1', {}, 'Overview'), cards, h('h2', {}, 'Nodes and workers'), wsec,
    h('h2', {}, 'Recent jobs'), jsec, h('h2', {}, 'Latest matrix run'), rsec);
  const workers = new Map();
  const draw = () => drawWorkers(wsec, cards, workers);
  const later = coalesce(draw, 150);
  const loadWorkers = async () => {
    const list = await api.workers(signal);
    workers.clear();
    for (const w of list) workers.set(w.worker_id, w);
    draw();
    // When the first table was drawn (the benchmark reads it).
    if (!performance.getEntriesByName('workers-drawn').length) performance.mark('workers-drawn');
  };
  const loadJobs = async () => {
    const jobs = (await api.get('/api/v2/jobs?limit=10', signal)).jobs;
    replace(jsec, jobs.length ? jobsTable(jobs, workerNames(workers.values()))
      : h('p', { class: 'muted' }, 'No jobs yet: ', link('#/run', 'run a test'), '.'));
  };
  const loadRun = async () => {
    const runs = (await api.get('/api/v2/runs?limit=1', signal)).runs;
    if (!runs.length) {
      replace(rsec, h('p', { class: 'muted' }, 'No matrix run yet: ', link('#/matrix', 'start one'), '.'));
      return;
    }
    const report = await api.get('/api/v2/runs/' + runs[0].run_id, signal);
    const p = report.progress;
    replace(rsec, h('p', {}, link('#/matrix/' + p.run_id, 'run ' + p.run_id.slice(0, 8)),
      ' — ' + new Date(p.created_at_ms).toLocaleString() + ', ' + p.pairs + ' pairs, ' +
      p.jobs_done + '/' + p.jobs + ' jobs done' + (p.finished ? '' : ' (running)')),
    comparison(report));
  };
  bus.on('worker_joined', (w) => { workers.set(w.worker_id, w); later(); });
  bus.on('worker_left', (w) => { workers.delete(w.worker_id); later(); });
  bus.on('job_done', coalesce(() => loadJobs().catch(() => {}), 500));
  bus.on('run_progress', coalesce(() => loadRun().catch(() => {}), 1000));
  await loadWorkers();
  await Promise.all([loadJobs(), loadRun()]);
  // Last seen moves on its own: read the list again now and then.
  every(10000, () => loadWorkers().catch(() => {}), signal);
}

function tools(w) {
  return w.tools.map((t) => (t.available ? t.tool + (t.version ? ' ' + t.version : '') : t.tool + ' (missing)')).join(', ');
}

function drawWorkers(el, cards, workers) {
  const byNode = new Map();
  for (const w of workers.values()) {
    if (!byNode.has(w.node_name)) byNode.set(w.node_name, []);
    byNode.get(w.node_name).push(w);
  }
  const nodes = [...byNode.keys()].sort();
  replace(cards,
    h('div', { class: 'card' }, h('b', { id: 'count-nodes' }, nodes.length), 'nodes'),
    h('div', { class: 'card' }, h('b', { id: 'count-workers' }, workers.size), 'workers'),
    h('div', { class: 'card' }, h('b', {}, [...workers.values()].filter((w) => w.host_network).length), 'host network'));
  if (!workers.size) {
    replace(el, h('p', { class: 'muted' }, 'No live worker.'));
    return;
  }
  const rows = [];
  for (const node of nodes) {
    const ws = byNode.get(node).sort((a, b) => a.pod_name.localeCompare(b.pod_name));
    const ip = ws.find((w) => w.node_ip);
    rows.push(h('tr', { class: 'node' }, h('th', { colspan: 7 },
      node, ip ? ' (' + ip.node_ip + ')' : '', ' — ' + ws.length + ' worker' + (ws.length > 1 ? 's' : ''))));
    for (const w of ws) {
      rows.push(h('tr', { class: 'worker', 'data-worker': w.worker_id },
        h('td', { class: 'pod' }, w.pod_name, w.pod_namespace ? h('span', { class: 'muted' }, ' · ' + w.pod_namespace) : ''),
        h('td', {}, w.host_network ? 'host' : 'pod'),
        h('td', { class: 'mono' }, w.pod_ip),
        h('td', {}, tools(w)),
        h('td', { class: 'num' }, w.max_concurrent_jobs),
        h('td', { class: 'mono muted' }, w.worker_id),
        h('td', {}, ago(w.last_seen_at_ms))));
    }
  }
  replace(el, table(['pod', 'network', 'IP', 'tools', 'max jobs', 'id', 'last seen'], rows, { id: 'workers-table' }));
}
