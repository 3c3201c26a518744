// HTTP client for the casestream API: bearer token in sessionStorage (refreshed ahead of expiry when the sign-in
// gave a refresh token), problem+json errors, read-your-writes via wait_for, and a fetch()-based SSE subscriber.

const TOKEN_KEY = 'casestream.token';
const EXPIRY_KEY = 'casestream.expires';

export class Problem extends Error {
  constructor(body, status) {
    super(body.detail || body.title || `HTTP ${status}`);
    this.type = body.type;
    this.title = body.title || `HTTP ${status}`;
    this.status = body.status || status;
    this.detail = body.detail || '';
    this.errors = Array.isArray(body.errors) ? body.errors : [];
  }
}

export function token() {
  const expires = Number(sessionStorage.getItem(EXPIRY_KEY) || 0);
  if (expires && Date.now() > expires) { clearToken(); return null; }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(accessToken, expiresIn) {
  sessionStorage.setItem(TOKEN_KEY, accessToken);
  if (expiresIn) sessionStorage.setItem(EXPIRY_KEY, String(Date.now() + expiresIn * 1000 - 5000));
  else sessionStorage.removeItem(EXPIRY_KEY);
}

// Set by oidc.js: gets a new access token with the refresh token (resolves true when it did).
let refresher = null;
let refreshing = null;
export function setRefresher(fn) { refresher = fn; }

const REFRESH_WITHIN_MS = 30000;

// The access token, refreshed first when it expires within REFRESH_WITHIN_MS and a refresher can renew it.
export async function freshToken() {
  const expires = Number(sessionStorage.getItem(EXPIRY_KEY) || 0);
  if (refresher && expires && Date.now() > expires - REFRESH_WITHIN_MS) {
    refreshing ??= Promise.resolve(refresher()).catch(() => false).finally(() => { refreshing = null; });
    await refreshing;
  }
  return token();
}

export function clearToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(EXPIRY_KEY);
  highWater = null;
}

function unauthorized() {
  clearToken();
  window.dispatchEvent(new CustomEvent('casestream:unauthorized'));
}

// The highest log position this session has caused (or seen); queries wait for the read model to reach it.
let highWater = null;

export function notePosition(position) {
  if (position === null || position === undefined) return;
  if (highWater === null) { highWater = position; return; }
  const a = Number(highWater); const b = Number(position);
  highWater = Number.isFinite(a) && Number.isFinite(b) ? (b > a ? position : highWater) : position;
}

function url(path, query) {
  // Relative to the page, so the portal also works behind a path prefix.
  const u = new URL(path.replace(/^\//, ''), document.baseURI);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') u.searchParams.set(key, value);
  }
  return u;
}

async function send(method, path, { query, json, form, auth = true } = {}) {
  const headers = { Accept: 'application/json, application/problem+json' };
  let body;
  if (json !== undefined) { headers['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
  if (form) body = new URLSearchParams(form);
  if (auth) {
    const t = await freshToken();
    if (!t) { unauthorized(); throw new Problem({ title: 'Not signed in', detail: 'Please sign in again.' }, 401); }
    headers.Authorization = `Bearer ${t}`;
  }
  let res;
  try {
    res = await fetch(url(path, query), { method, headers, body, cache: 'no-store' });
  } catch (err) {
    throw new Problem({ title: 'Network error', detail: `The server could not be reached (${err.message}).` }, 0);
  }
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : null;
  if (res.ok) return data;
  if (res.status === 401 && auth) unauthorized();
  throw new Problem(data && typeof data === 'object' ? data : { title: res.statusText || 'Error' }, res.status);
}

// GET with read-your-writes: include wait_for; if the read model does not catch up (504), retry once without it.
export async function get(path, query = {}) {
  const waitFor = highWater;
  try {
    return await send('GET', path, { query: { ...query, wait_for: waitFor ?? undefined } });
  } catch (err) {
    if (err instanceof Problem && err.status === 504 && waitFor !== null) {
      highWater = null;
      return send('GET', path, { query });
    }
    throw err;
  }
}

// GET bytes (a document preview) with the bearer token: a Blob, or a Problem.
export async function bytes(path) {
  const t = await freshToken();
  if (!t) { unauthorized(); throw new Problem({ title: 'Not signed in', detail: 'Please sign in again.' }, 401); }
  const res = await fetch(url(path), { headers: { Authorization: `Bearer ${t}` }, cache: 'no-store' });
  if (res.ok) return res.blob();
  const data = await res.json().catch(() => null);
  throw new Problem(data && typeof data === 'object' ? data : { title: res.statusText || 'Error' }, res.status);
}

// POST a command; remember its position so the next query reads our own write.
export async function command(path, body = {}) {
  const reply = await send('POST', path, { json: { command_id: crypto.randomUUID?.(), ...body } });
  if (reply) notePosition(reply.position);
  return reply;
}

// How this server signs people in: {mode: 'password'} (the login form below) or {mode: 'oidc', issuers: [...]}.
export const signinConfig = () => send('GET', '/auth/config', { auth: false });

export async function login(username, password, tenant) {
  const form = { grant_type: 'password', username, password };
  if (tenant) form.tenant = tenant;
  const reply = await send('POST', '/auth/token', { form, auth: false });
  setToken(reply.access_token, reply.expires_in);
  return reply;
}

// --- Server-Sent Events over fetch (EventSource cannot send an Authorization header) ---

// Parse an SSE byte stream (WHATWG rules: CR/LF/CRLF lines, ':' comments, data/event/id/retry fields).
export async function parseSSE(stream, onMessage, onRetry) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let data = [];
  let event = '';
  let id = null;
  const line = (text) => {
    if (text === '') {
      if (data.length) onMessage({ id, event: event || 'message', data: data.join('\n') });
      else if (id !== null) onMessage({ id, event: '', data: null });
      data = []; event = '';
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
    else if (field === 'id' && !value.includes('\0')) id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) onRetry?.(Number(value));
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let match;
    // A trailing '\r' may be the first half of a CRLF split across chunks: keep it for the next chunk.
    while ((match = /\r\n|\r(?!$)|\n/.exec(buffer))) {
      line(buffer.slice(0, match.index));
      buffer = buffer.slice(match.index + match[0].length);
    }
  }
}

// Subscribe to the live feed, reconnecting with Last-Event-ID. Returns a function that stops it.
export function subscribe(onEvent, onStatus) {
  let stopped = false;
  let controller = null;
  let lastId = null;
  let delay = 1000;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  (async () => {
    while (!stopped) {
      const t = await freshToken();
      if (!t) { unauthorized(); return; }
      controller = new AbortController();
      const headers = { Authorization: `Bearer ${t}`, Accept: 'text/event-stream' };
      if (lastId !== null) headers['Last-Event-ID'] = lastId;
      try {
        onStatus('connecting');
        const res = await fetch(url('/api/events'), { headers, signal: controller.signal, cache: 'no-store' });
        if (res.status === 401) { unauthorized(); return; }
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        onStatus('live');
        delay = 1000;
        await parseSSE(res.body, (msg) => {
          if (msg.id !== null) lastId = msg.id;
          if (msg.data === null) return;
          let entry = null;
          try { entry = JSON.parse(msg.data); } catch { entry = { summary: msg.data }; }
          onEvent({ position: msg.id, type: msg.event, entry });
        }, (ms) => { delay = ms; });
      } catch (err) {
        if (stopped) return;
      }
      if (stopped) return;
      onStatus('offline');
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    }
  })();
  return () => { stopped = true; controller?.abort(); onStatus('off'); };
}
