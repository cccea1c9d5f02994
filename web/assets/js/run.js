// Run a test: kind, source and target from the live workers, the kind's parameters with the
// CLI's bounds; then the job live (queued → running → terminal) and its result.

import * as api from './api.js';
import { h, replace, jobLink } from './dom.js';
import { jobView } from './jobview.js';
import { workerNames } from './jobs.js';

// The kinds' parameters: name, label, bounds (those of the protocol, as the CLI checks them).
const KINDS = {
  ping: [
    { name: 'count', label: 'count', min: 1, max: 1000, value: 5 },
    { name: 'interval_ms', label: 'interval (ms)', min: 200, max: 10000, value: 200 },
    { name: 'size_bytes', label: 'payload (bytes)', min: 0, max: 65507, value: 56 },
  ],
  traceroute: [
    { name: 'max_hops', label: 'max hops', min: 1, max: 64, value: 30 },
    { name: 'protocol', label: 'probes', options: ['udp', 'icmp', 'tcp'] },
  ],
  iperf3: [
    { name: 'duration_s', label: 'duration (s)', min: 1, max: 60, value: 5 },
    { name: 'parallel', label: 'parallel streams', min: 1, max: 16, value: 1 },
    { name: 'protocol', label: 'protocol', options: ['tcp', 'udp'] },
    { name: 'bitrate_bps', label: 'UDP bitrate (bit/s)', min: 1, max: 100000000000, optional: true },
    { name: 'reverse', label: 'reverse (-R)', checkbox: true },
  ],
  noop: [{ name: 'sleep_ms', label: 'sleep (ms)', min: 0, max: 600000, value: 0 }],
};

function field(p) {
  const id = 'param-' + p.name;
  let input;
  if (p.options) input = h('select', { id, name: p.name }, p.options.map((o) => h('option', { value: o }, o)));
  else if (p.checkbox) input = h('input', { id, name: p.name, type: 'checkbox' });
  else input = h('input', { id, name: p.name, type: 'number', min: p.min, max: p.max, step: 1, value: p.value, required: !p.optional });
  return [h('label', { for: id }, p.label), h('span', {}, input,
    p.min !== undefined ? h('span', { class: 'muted' }, ' ' + p.min + '–' + p.max) : '')];
}

// The job spec of the form, or an error naming the field.
function spec(form, kind) {
  const params = { kind };
  for (const p of KINDS[kind]) {
    const el = form.querySelector('#param-' + p.name);
    if (p.options) params[p.name] = el.value;
    else if (p.checkbox) params[p.name] = el.checked;
    else if (el.value === '' && p.optional) continue;
    else {
      const v = Number(el.value);
      if (!Number.isInteger(v) || v < p.min || v > p.max) {
        throw new Error('params.' + p.name + ': ' + el.value + ' is out of bounds (' + p.min + '..=' + p.max + ')');
      }
      params[p.name] = v;
    }
  }
  const job = { source: form.querySelector('#source').value, params };
  if (kind !== 'noop') {
    const t = form.querySelector('#target').value;
    job.target = t === '' ? { address: form.querySelector('#address').value.trim() } : { worker: t };
  }
  return job;
}

export async function render(main, _params, { signal }) {
  const workers = await api.workers(signal);
  const names = workerNames(workers);
  const opts = () => workers.map((w) => h('option', { value: w.worker_id }, w.pod_name + ' (' + w.node_name + ', ' + w.pod_ip + ')'));
  const kind = h('select', { id: 'kind', name: 'kind' }, Object.keys(KINDS).map((k) => h('option', { value: k }, k)));
  const source = h('select', { id: 'source', required: true }, opts());
  const target = h('select', { id: 'target' }, opts(), h('option', { value: '' }, 'an address…'));
  if (workers.length > 1) target.selectedIndex = 1;
  const address = h('input', { id: 'address', placeholder: 'IP address (allow-listed CIDRs)', hidden: true });
  const paramsBox = h('div', { class: 'wide', id: 'params' });
  const error = h('p', { class: 'error', id: 'run-error' });
  const submit = h('button', { type: 'submit', id: 'run-submit' }, 'Run');
  const form = h('form', { class: 'grid', id: 'run-form', novalidate: true },
    h('label', { for: 'kind' }, 'kind'), kind,
    h('label', { for: 'source' }, 'source'), source,
    h('label', { for: 'target', class: 'target-row' }, 'target'), h('span', { class: 'target-row' }, target, ' ', address),
    paramsBox, h('span', { class: 'wide' }, submit), error);
  const out = h('section', { id: 'run-job' });
  main.append(h('h1', {}, 'Run a test'), workers.length ? form : h('p', { class: 'muted' }, 'No live worker.'), out);
  const drawParams = () => {
    replace(paramsBox, h('div', { class: 'grid' }, KINDS[kind.value].map(field)));
    for (const el of form.querySelectorAll('.target-row')) el.hidden = kind.value === 'noop';
  };
  kind.addEventListener('change', drawParams);
  target.addEventListener('change', () => { address.hidden = target.value !== ''; });
  drawParams();
  let current = null;
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    let job;
    try { job = spec(form, kind.value); } catch (e) { error.textContent = e.message; return; }
    submit.disabled = true;
    try {
      const id = (await api.post('/api/v2/jobs', job)).job_ids[0];
      if (current) current.abort();
      current = new AbortController();
      signal.addEventListener('abort', () => current.abort());
      const view = h('div', {});
      replace(out, h('p', {}, 'Job ', jobLink(id, id)), view);
      jobView(view, id, current.signal, names);
    } catch (e) {
      error.textContent = String(e);
    } finally {
      submit.disabled = false;
    }
  });
}
