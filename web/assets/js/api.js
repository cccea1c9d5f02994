// The API: fetch with the bearer token, JSON errors, and the event stream read with fetch
// (an EventSource cannot send the Authorization header).

const KEY = 'podperf-token';

export function token() {
  return sessionStorage.getItem(KEY) || localStorage.getItem(KEY) || '';
}

export function setToken(t, remember) {
  forgetToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, t);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

function headers(extra) {
  const hs = Object.assign({ Accept: 'application/json' }, extra || {});
  const t = token();
  if (t) hs.Authorization = 'Bearer ' + t;
  return hs;
}

// An error answer of the API: status, code, field, message.
export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || ('HTTP ' + status));
    this.status = status;
    this.code = e.code || 'http_' + status;
    this.field = e.field;
  }
  toString() {
    return this.code + (this.field ? ' (' + this.field + ')' : '') + ': ' + this.message;
  }
}

// Called with every 401 (the app shows the token form).
let onUnauthorized = () => {};
export function whenUnauthorized(f) { onUnauthorized = f; }

export async function call(method, path, body, signal) {
  const init = { method, headers: headers(body ? { 'Content-Type': 'application/json' } : {}), signal };
  if (body !== undefined) init.body = JSON.stringify(body);
  const res = await fetch(path, init);
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (res.status === 401) onUnauthorized();
  if (!res.ok) throw new ApiError(res.status, json);
  return json;
}

export const get = (path, signal) => call('GET', path, undefined, signal);
export const post = (path, body) => call('POST', path, body);

// Every live worker (the API pages through them for us).
export async function workers(signal) {
  return (await get('/api/v2/workers', signal)).workers;
}

// Reads `/api/v2/events[?query]` until `signal` aborts, calling onEvent(name, data) for each
// event; reconnects after a dropped stream (with a back-off). `onState(bool)` tells whether
// the stream is connected.
export function events(query, onEvent, signal, onState) {
  const path = '/api/v2/events' + (query ? '?' + query : '');
  const state = onState || (() => {});
  (async () => {
    let backoff = 500;
    while (!signal.aborted) {
      try {
        const res = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }), signal });
        if (res.status === 401) { onUnauthorized(); return; }
        if (!res.ok) throw new Error('HTTP ' + res.status);
        state(true);
        backoff = 500;
        await readStream(res.body, onEvent);
      } catch (e) {
        if (signal.aborted) return;
      }
      state(false);
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  })();
}

async function readStream(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n?/g, '\n');
    let i;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
        if (field === 'event') name = val;
        else if (field === 'data') data.push(val);
      }
      if (data.length === 0) continue;
      let parsed;
      try { parsed = JSON.parse(data.join('\n')); } catch (_) { continue; }
      onEvent(name, parsed);
    }
  }
}
