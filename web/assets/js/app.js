// The shell: the token form, the hash router (#/, #/run, #/matrix[/RUN], #/jobs[/ID], #/status)
// and one live event stream per tab that the current page listens to.

import * as api from './api.js';
import { h, replace } from './dom.js';
import * as overview from './overview.js';
import * as run from './run.js';
import * as matrix from './matrix.js';
import * as jobs from './jobs.js';
import * as schedules from './schedules.js';
import * as status from './status.js';

const PAGES = { overview, run, matrix, jobs, schedules, status };

let page = null; // { controller, listeners }
let live = null; // the AbortController of the tab's event stream

// What a page listens to: bus.on(name, f) until the page is left.
const bus = {
  on(name, f) { if (page) page.listeners.push([name, f]); },
};

function dispatch(name, data) {
  if (!page) return;
  for (const [n, f] of page.listeners) if (n === name || n === '*') f(data, name);
}

function setLive(on) {
  const el = document.getElementById('live');
  el.className = 'live ' + (on ? 'on' : 'off');
  el.textContent = on ? '● live' : 'offline';
}

function startLive() {
  if (live) live.abort();
  live = new AbortController();
  api.events('', dispatch, live.signal, setLive);
}

function route() {
  if (page) page.controller.abort();
  const parts = (location.hash.replace(/^#\/?/, '') || 'overview').split('/');
  const name = PAGES[parts[0]] ? parts[0] : 'overview';
  const params = parts.slice(1).map(decodeURIComponent);
  for (const a of document.querySelectorAll('header nav a')) {
    a.classList.toggle('current', a.dataset.page === name);
  }
  page = { controller: new AbortController(), listeners: [] };
  const main = document.getElementById('main');
  main.dataset.page = name;
  replace(main);
  PAGES[name].render(main, params, { signal: page.controller.signal, bus }).catch((e) => {
    if (e.name === 'AbortError') return;
    main.append(h('p', { class: 'error', id: 'page-error' }, String(e)));
  });
}

function showLogin(message) {
  document.getElementById('login').hidden = false;
  document.getElementById('main').hidden = true;
  document.getElementById('login-error').textContent = message || '';
  document.getElementById('token').focus();
}

function hideLogin() {
  document.getElementById('login').hidden = true;
  document.getElementById('main').hidden = false;
  document.getElementById('logout').hidden = !api.token();
}

api.whenUnauthorized(() => {
  if (live) live.abort();
  showLogin(api.token() ? 'That token was refused.' : '');
});

document.getElementById('login-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  api.setToken(document.getElementById('token').value.trim(),
    document.getElementById('remember').checked);
  document.getElementById('token').value = '';
  hideLogin();
  startLive();
  route();
});

document.getElementById('logout').addEventListener('click', () => {
  api.forgetToken();
  if (live) live.abort();
  if (page) page.controller.abort();
  showLogin('');
});

window.addEventListener('hashchange', route);
hideLogin();
startLive();
route();
