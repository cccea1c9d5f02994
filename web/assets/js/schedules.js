// Schedules (#/schedules): the list with each schedule's status, last run and next due time
// (re-read every few seconds), an add form (a sweep round or a matrix run every period), and
// pause / resume / remove. Every value is rendered as text (dom.js).

import * as api from './api.js';
import { h, replace, table, link, when, every } from './dom.js';

const REFRESH_MS = 3000;

function period(ms) {
  if (ms % 3600000 === 0) return ms / 3600000 + ' h';
  if (ms % 60000 === 0) return ms / 60000 + ' min';
  return ms / 1000 + ' s';
}

function what(s) {
  if (s.run.sweep) return 'sweep, ' + s.run.sweep.count + ' per target';
  const m = s.run.matrix || {};
  return 'matrix' + (m.mesh ? ' (mesh)' : '') + ', ' + (m.samples || 3) + ' samples';
}

function lastRun(s) {
  const l = s.last_run;
  if (!l) return ['–', '–'];
  const id = l.run_id ? link('#/matrix/' + encodeURIComponent(l.run_id), String(l.run_id).slice(0, 8)) : '–';
  const outcome = h('span', { class: 'outcome ' + l.outcome, 'data-outcome': l.outcome, title: l.message || '' },
    l.outcome + (l.message ? ': ' + l.message : ''));
  return [h('span', {}, id, ' ', when(l.started_at_ms)), outcome];
}

function listTable(schedules, act) {
  const rows = schedules.map((s) => {
    const [run, outcome] = lastRun(s);
    const toggle = h('button', { type: 'button', class: s.paused ? 'resume' : 'pause' }, s.paused ? 'resume' : 'pause');
    toggle.addEventListener('click', () => act(s.paused ? 'resume' : 'pause', s.name));
    const rm = h('button', { type: 'button', class: 'rm' }, 'remove');
    rm.addEventListener('click', () => act('rm', s.name));
    return h('tr', { 'data-schedule': s.name },
      h('td', { class: 'mono' }, s.name),
      h('td', {}, what(s)),
      h('td', {}, 'every ' + period(s.every_ms) + (s.jitter ? ', jitter ' + s.jitter : '')),
      h('td', { class: 'status', 'data-status': s.status }, s.status),
      h('td', { class: 'num' }, String(s.runs)),
      h('td', {}, run),
      h('td', {}, outcome),
      h('td', {}, s.status === 'expired' ? '–' : when(s.next_due_ms)),
      h('td', {}, toggle, ' ', rm));
  });
  return table(['name', 'what', 'period', 'status', 'runs so far', 'last run', 'outcome', 'next due', ''], rows,
    { class: 'schedules', id: 'schedules-table' });
}

function addForm(onAdded, error) {
  const name = h('input', { id: 'sched-name', required: true, pattern: '[A-Za-z0-9_-]{1,64}', placeholder: 'mesh-latency' });
  const everyS = h('input', { id: 'sched-every', type: 'number', min: '1', max: '604800', value: '60', required: true });
  const jitter = h('input', { id: 'sched-jitter', type: 'number', min: '0', max: '0.5', step: '0.05', value: '0.1' });
  const kind = h('select', { id: 'sched-kind' }, h('option', { value: 'sweep' }, 'sweep round'),
    h('option', { value: 'matrix' }, 'matrix run'));
  const count = h('input', { id: 'sched-count', type: 'number', min: '1', max: '100', value: '5' });
  const mesh = h('input', { id: 'sched-mesh', type: 'checkbox' });
  const samples = h('input', { id: 'sched-samples', type: 'number', min: '1', max: '20', value: '3' });
  const submit = h('button', { type: 'submit', id: 'sched-add' }, 'Add');
  const form = h('form', { id: 'schedule-form', class: 'toolbar' },
    h('label', {}, 'Name ', name), h('label', {}, 'Every (s) ', everyS), h('label', {}, 'Jitter ', jitter),
    h('label', {}, 'Runs ', kind), h('label', {}, 'Count per target ', count),
    h('label', {}, mesh, ' mesh (matrix)'), h('label', {}, 'Samples (matrix) ', samples), submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(error);
    const run = kind.value === 'sweep'
      ? { sweep: { count: Number(count.value) } }
      : { matrix: { mesh: mesh.checked, samples: Number(samples.value), ping_count: Number(count.value) } };
    const body = {
      name: name.value.trim(),
      every_ms: Math.round(Number(everyS.value) * 1000),
      jitter: Number(jitter.value || 0),
      run,
    };
    submit.disabled = true;
    try {
      await api.post('/api/v2/schedules', body);
      name.value = '';
      onAdded();
    } catch (e) {
      replace(error, String(e));
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

export async function render(main, _params, { signal }) {
  const list = h('div', { id: 'schedules-list' });
  const error = h('p', { class: 'error', id: 'schedule-error' });
  let seq = 0; // only the latest answer is shown
  const load = async () => {
    const mine = ++seq;
    let reply;
    try {
      reply = await api.get('/api/v2/schedules', signal);
    } catch (e) {
      if (e.name !== 'AbortError' && mine === seq) replace(error, String(e));
      return;
    }
    if (mine !== seq) return;
    const schedules = reply.schedules || [];
    replace(list, schedules.length ? listTable(schedules, act)
      : h('p', { class: 'muted', id: 'no-schedules' }, 'No schedule yet.'));
  };
  const act = async (verb, name) => {
    replace(error);
    const path = '/api/v2/schedules/' + encodeURIComponent(name);
    try {
      if (verb === 'rm') await api.call('DELETE', path);
      else await api.post(path + '/' + verb, {});
    } catch (e) {
      replace(error, String(e));
    }
    load();
  };
  main.append(h('h1', {}, 'Schedules'),
    h('p', { class: 'muted' }, 'A sweep round or a matrix run every period, started by the leading dispatcher ',
      'at a random point within the jitter; a run that overruns makes the next one slip. ',
      'Each run is an ordinary run, tagged with its schedule.'),
    addForm(load, error), error, list);
  await load();
  every(REFRESH_MS, load, signal);
}
