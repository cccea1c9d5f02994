// Element helpers. Data only ever becomes text nodes (textContent) or attribute values;
// nothing here parses HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) throw new Error('event handlers are added with addEventListener');
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// An HTML element: h('td', {class: 'num'}, 'text', otherNode).
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// An SVG element.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// Replaces the children of `el`.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// A link inside the page.
export function link(hash, ...children) {
  return h('a', { href: hash }, ...children);
}

export function jobLink(id, label) {
  return link('#/jobs/' + encodeURIComponent(id), label || String(id).slice(0, 8));
}

export function stateBadge(state) {
  return h('span', { class: 'state ' + state, 'data-state': state }, state);
}

export function table(headers, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, headers.map((c) => (c instanceof Node ? c : h('th', {}, c))))),
    h('tbody', {}, rows));
}

export function num(v, digits) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  return Number(v).toFixed(digits === undefined ? 2 : digits);
}

export function bits(bps) {
  if (bps === undefined || bps === null) return '–';
  const units = [['Gbit/s', 1e9], ['Mbit/s', 1e6], ['kbit/s', 1e3]];
  for (const [u, f] of units) if (Math.abs(bps) >= f) return (bps / f).toFixed(2) + ' ' + u;
  return bps.toFixed(0) + ' bit/s';
}

export function ago(ms) {
  if (!ms) return '–';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.round(s / 60) + ' min ago';
  return new Date(ms).toLocaleString();
}

export function when(ms) {
  return ms ? new Date(ms).toLocaleTimeString() : '–';
}

// `f` at most once per `ms`, the last call always honoured.
export function coalesce(f, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => { timer = null; f(); }, ms);
  };
}

// Calls `f` every `ms` until `signal` aborts.
export function every(ms, f, signal) {
  const id = setInterval(f, ms);
  signal.addEventListener('abort', () => clearInterval(id));
}
