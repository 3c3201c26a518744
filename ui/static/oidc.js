// Sign-in through an external OpenID Connect issuer (Keycloak, a realm per tenant): authorization code flow with
// PKCE (S256). The portal never sees a password: the issuer's own page asks for it. The code is exchanged for
// tokens at the issuer's token endpoint straight from the browser (a public client; the issuer allows our origin),
// the access token is refreshed before it expires, and signing out ends the issuer's session too.
import * as api from './api.js';

const FLOW_KEY = 'casestream.oidc.flow';      // state, verifier and issuer of a sign-in in progress
const SESSION_KEY = 'casestream.oidc.session'; // issuer endpoints, refresh token and id token of the signed-in user
const REFRESH_AHEAD_MS = 30000;                // refresh this long before the access token expires

let refreshTimer = null;

function b64url(bytes) {
  let text = '';
  for (const b of new Uint8Array(bytes)) text += String.fromCharCode(b);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const randomString = (n) => b64url(crypto.getRandomValues(new Uint8Array(n)));

async function challengeFor(verifier) {
  return b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier)));
}

// Where the issuer sends the browser back: the portal page itself, without query or fragment (registered as is).
const redirectUri = () => `${location.origin}${location.pathname}`;

function readJson(key) {
  try { return JSON.parse(sessionStorage.getItem(key) || 'null'); } catch { return null; }
}

export const session = () => readJson(SESSION_KEY);

// Send the browser to the tenant's sign-in page. `issuer` is one entry of GET /auth/config's `issuers`.
export async function begin(issuer) {
  if (!crypto.subtle) throw new Error('This browser cannot sign in securely here (no Web Crypto); use https or 127.0.0.1.');
  const verifier = randomString(48); // 64 characters, within RFC 7636's 43..128
  const state = randomString(24);
  sessionStorage.setItem(FLOW_KEY, JSON.stringify({ state, verifier, issuer, hash: location.hash }));
  const target = new URL(issuer.authorization_endpoint);
  target.search = new URLSearchParams({
    response_type: 'code',
    client_id: issuer.client_id,
    redirect_uri: redirectUri(),
    scope: 'openid',
    state,
    code_challenge: await challengeFor(verifier),
    code_challenge_method: 'S256',
  }).toString();
  location.assign(target.toString());
}

async function tokenRequest(issuer, form) {
  let res;
  try {
    res = await fetch(issuer.token_endpoint, {
      method: 'POST', body: new URLSearchParams({ client_id: issuer.client_id, ...form }),
      headers: { Accept: 'application/json' }, cache: 'no-store',
    });
  } catch (err) {
    throw new api.Problem({ title: 'Sign-in service unreachable', detail: `${issuer.issuer} could not be reached (${err.message}).` }, 0);
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) {
    throw new api.Problem({ title: 'Sign-in failed', detail: body.error_description || body.error || `HTTP ${res.status}` }, res.status || 400);
  }
  return body;
}

function keep(issuer, reply, previous) {
  api.setToken(reply.access_token, reply.expires_in);
  const refreshIn = Number(reply.refresh_expires_in || 0);
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({
    issuer,
    refresh_token: reply.refresh_token || previous?.refresh_token || null,
    // 0 from Keycloak means "as long as the session"; otherwise stop trying once it has expired
    refresh_expires: refreshIn > 0 ? Date.now() + refreshIn * 1000 : 0,
    id_token: reply.id_token || previous?.id_token || null,
  }));
  sessionStorage.setItem('casestream.tenant', issuer.tenant);
  schedule(reply.expires_in);
}

function schedule(expiresIn) {
  clearTimeout(refreshTimer);
  if (!expiresIn) return;
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, Math.max(1000, expiresIn * 1000 - REFRESH_AHEAD_MS));
}

// Back from the issuer (?code=…&state=…): check the state, exchange the code with the verifier. True when signed in.
export async function complete() {
  const params = new URLSearchParams(location.search);
  if (!params.has('state') || !(params.has('code') || params.has('error'))) return false;
  const flow = readJson(FLOW_KEY);
  sessionStorage.removeItem(FLOW_KEY); // a state is good for one answer only
  history.replaceState(null, '', `${location.pathname}${flow?.hash || ''}`);
  if (!flow || params.get('state') !== flow.state) {
    throw new api.Problem({ title: 'Sign-in failed', detail: 'The sign-in answer does not belong to this browser session; please sign in again.' }, 400);
  }
  if (params.has('error')) {
    throw new api.Problem({ title: 'Sign-in failed', detail: params.get('error_description') || params.get('error') }, 400);
  }
  const reply = await tokenRequest(flow.issuer, {
    grant_type: 'authorization_code', code: params.get('code'), redirect_uri: redirectUri(), code_verifier: flow.verifier,
  });
  keep(flow.issuer, reply, null);
  return true;
}

// A new access token from the refresh token. True when refreshed; false when there is nothing to refresh with.
export async function refresh() {
  const current = session();
  if (!current?.refresh_token) return false;
  if (current.refresh_expires && Date.now() > current.refresh_expires) return false;
  const reply = await tokenRequest(current.issuer, { grant_type: 'refresh_token', refresh_token: current.refresh_token });
  keep(current.issuer, reply, current);
  return true;
}

// Forget the tokens here; with `atIssuer`, also end the issuer's session (its sign-in page asks for the password again).
export function signOut(atIssuer) {
  const current = session();
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(SESSION_KEY);
  if (!atIssuer || !current?.issuer?.end_session_endpoint) return false;
  const target = new URL(current.issuer.end_session_endpoint);
  const query = { client_id: current.issuer.client_id, post_logout_redirect_uri: redirectUri() };
  if (current.id_token) query.id_token_hint = current.id_token;
  target.search = new URLSearchParams(query).toString();
  location.assign(target.toString());
  return true;
}

// api.js asks for a refresh when the access token is about to expire.
api.setRefresher(refresh);
