// Session state shared by the views: who is signed in, cached definitions and queues, live-event listeners.
import * as api from './api.js';

export const session = { me: null };
let definitions = null;
let queues = null;
const listeners = new Set();

export function reset() {
  session.me = null; definitions = null; queues = null;
}

export async function loadMe() {
  session.me = await api.get('/api/me');
  return session.me;
}

export const isModerator = () => (session.me?.roles || []).some((r) => r === 'supervisor' || r === 'admin');

export async function allDefinitions(force = false) {
  if (!definitions || force) definitions = await api.get('/api/definitions');
  return Array.isArray(definitions) ? definitions : definitions?.items || [];
}

export async function definition(key) {
  const found = (await allDefinitions()).find((d) => d.key === key);
  if (found && found.latest) return found;
  return api.get(`/api/definitions/${encodeURIComponent(key)}`);
}

// The spec a case was opened under (its definition_version), falling back to the latest.
export async function specFor(key, version) {
  const def = await definition(key);
  const match = (def.versions || []).find((v) => v.version === version);
  return (match && match.spec) || def.latest;
}

export async function allQueues() {
  if (!queues) {
    const reply = await api.get('/api/queues');
    queues = Array.isArray(reply) ? reply : reply?.items || [];
  }
  return queues;
}

// Views register for live events while they are on screen.
export function listen(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function dispatch(evt) {
  if (String(evt.type).startsWith('Definition')) definitions = null;
  if (String(evt.type).startsWith('Queue')) queues = null;
  for (const fn of [...listeners]) {
    try { fn(evt); } catch (err) { console.error(err); }
  }
}

export const DEV_USERS = ['alice', 'bob', 'carol', 'admin'];
export const STATUSES = ['open', 'closed', 'archived'];
