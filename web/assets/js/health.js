// The latest sweep round's health (GET /api/v2/health): a panel with its findings, and the marks
// the heatmap puts on the nodes and the pairs they name. Findings carry node names (free text):
// everything is rendered as text.

import * as api from './api.js';
import { h, ago } from './dom.js';

// The latest health answer, or null when no round was seen yet (404 no_round).
export async function latest(signal) {
  try {
    return await api.get('/api/v2/health', signal);
  } catch (e) {
    if (e.status === 404) return null;
    throw e;
  }
}

// The panel above the heatmap.
export function panel(health) {
  if (!health) {
    return h('section', { id: 'health-panel', class: 'health', 'data-state': 'none' },
      h('p', { class: 'muted' }, 'Health: no complete sweep round seen yet (schedule sweeps, or run podperf health).'));
  }
  const round = 'latest sweep round (' + health.sweeps + ' sweeps) ' + ago(health.round_completed_at_ms);
  if (health.healthy) {
    return h('section', { id: 'health-panel', class: 'health ok', 'data-state': 'healthy' },
      h('p', {}, 'Health: ', h('b', {}, 'healthy'), ' — ' + health.nodes + ' nodes, nothing found in the ' + round + '.'));
  }
  return h('section', { id: 'health-panel', class: 'health bad', 'data-state': 'problems' },
    h('h2', {}, 'Health: ' + health.findings.length + ' finding(s) on ' + health.nodes + ' nodes'),
    h('ul', {}, health.findings.map((f) => h('li', { class: 'finding', 'data-finding': f.finding, 'data-node': f.node }, f.message))),
    h('p', { class: 'muted' }, 'From the ' + round + '; named nodes and pairs are marked on the heatmap.'));
}

function add(map, key, message) {
  if (!map.has(key)) map.set(key, []);
  map.get(key).push(message);
}

// What the heatmap marks: {nodes: Map(node → [message]), pairs: Map("src\0dst" → [message])}
// (a pair finding names the node that cannot be reached from `peer`).
export function marks(health) {
  const nodes = new Map(), pairs = new Map();
  for (const f of (health && health.findings) || []) {
    if (f.peer) add(pairs, f.peer + '\u0000' + f.node, f.message);
    else add(nodes, f.node, f.message);
  }
  return { nodes, pairs };
}
