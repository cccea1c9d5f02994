// Status: the dispatcher replicas (which one leads), NATS and Redis reachability, the queue
// depth and each store's use against its budget, as `podperf status` shows them.

import * as api from './api.js';
import { h, replace, table, ago, every } from './dom.js';

function bytes(n) {
  const units = [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]];
  for (const [u, f] of units) if (n >= f) return (n / f).toFixed(1) + ' ' + u;
  return n + ' B';
}

function reach(name, r) {
  const ok = r && r.reachable;
  return h('div', { class: 'card', id: 'reach-' + name.toLowerCase(), 'data-reachable': ok ? 'true' : 'false' },
    h('b', { class: ok ? 'ok' : 'bad' }, ok ? 'reachable' : 'unreachable'),
    name + (r && r.rtt_ms !== undefined ? ' · ' + r.rtt_ms + ' ms' : ''),
    r && r.error ? h('span', { class: 'error' }, ' ' + r.error) : '');
}

// One store's use against its budget: a bar and `used / max (pct)`.
function use(id, label, used, max, fmt) {
  const pct = max ? Math.min(100, (100 * used) / max) : 0;
  return h('tr', { id },
    h('th', {}, label),
    h('td', {}, h('progress', { max: max || 1, value: Math.min(used, max || 1) })),
    h('td', { class: 'num' }, fmt(used) + (max ? ' / ' + fmt(max) + ' (' + pct.toFixed(0) + ' %)' : ' (no budget)')));
}

function draw(el, st) {
  const rows = st.dispatchers.map((d) => h('tr', { class: 'dispatcher', 'data-role': d.role, 'data-dispatcher': d.dispatcher_id },
    h('td', { class: 'mono' }, d.dispatcher_id, d.dispatcher_id === st.answered_by ? h('span', { class: 'muted' }, ' (answered)') : ''),
    h('td', {}, d.host),
    h('td', { class: 'num' }, d.pid),
    h('td', {}, h('span', { class: 'role ' + d.role }, d.role), d.epoch !== undefined ? h('span', { class: 'muted' }, ' epoch ' + d.epoch) : ''),
    h('td', { title: new Date(d.since_ms).toLocaleString() }, ago(d.since_ms)),
    h('td', { class: 'mono' }, d.version)));
  const s = st.store;
  replace(el,
    h('div', { class: 'cards' },
      reach('NATS', st.nats), reach('Redis', st.redis),
      h('div', { class: 'card' }, h('b', { id: 'queue-depth' }, st.queue_depth), 'jobs queued or running')),
    h('h2', {}, 'Dispatchers'),
    st.dispatchers.length
      ? table(['id', 'host', 'pid', 'role', 'since', 'version'], rows, { id: 'dispatchers' })
      : h('p', { class: 'error' }, 'No dispatcher advertises itself.'),
    h('h2', {}, 'Stores against their budgets'),
    table(['store', 'use', ''], [
      use('store-results', 'results stream', s.results_bytes, s.results_max_bytes, bytes),
      use('store-jobs', 'jobs kept (Redis)', s.jobs_kept, s.jobs_max, String),
    ], { id: 'stores' }),
    h('p', { class: 'muted' }, s.results_messages + ' results in the stream; Redis uses ' + bytes(s.redis_used_bytes) + '.'));
}

export async function render(main, _params, { signal }) {
  const box = h('section', { id: 'status' });
  main.append(h('h1', {}, 'Status'), box);
  const load = async () => draw(box, await api.get('/api/v2/status', signal));
  await load();
  every(5000, () => load().catch(() => {}), signal);
}
