// Who is logged in. The session token lives in an HttpOnly cookie that
// scripts cannot read, so the page remembers the user the log-in returned
// (id, name, roles: no secret) in localStorage, and checks it against
// GET /users/me when the page loads. Only a page that believes it is logged
// in asks: an anonymous visitor's page sends no request that must fail.
// The roles only choose what the page shows; the server decides what is
// allowed.
import { del, get, post } from './api.js';

const KEY = 'modshop.user';
const listeners = new Set();

function load() {
  try {
    const u = JSON.parse(localStorage.getItem(KEY));
    return u && typeof u.id === 'string' && Array.isArray(u.roles) ? u : null;
  } catch {
    return null;
  }
}

let user = load();

function changed() {
  for (const fn of listeners) fn(user);
}

function store(u) {
  user = u ? { id: u.id, username: u.username, display_name: u.display_name || '', email: u.email, roles: u.roles } : null;
  if (user) localStorage.setItem(KEY, JSON.stringify(user));
  else localStorage.removeItem(KEY);
  changed();
}

/** currentUser is the logged-in user, or null. */
export function currentUser() {
  return user;
}

/** isStaff reports whether the user holds the admin role. */
export function isStaff() {
  return Boolean(user && user.roles.includes('admin'));
}

/** onSessionChange calls fn whenever the user logs in or out. */
export function onSessionChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** logIn opens a session; the server sets the cookie. */
export async function logIn(login, password) {
  const s = await post('/api/v1/sessions', { login, password }, { auth: false });
  store(s.user);
  return s.user;
}

/** register creates a customer account and logs it in; displayName may be "". */
export async function register(username, email, password, displayName = '') {
  await post('/api/v1/users', { username, email, password, display_name: displayName }, { auth: false });
  return logIn(username, password);
}

/** remember stores the account an account page changed. */
export function remember(u) {
  store(u);
}

/** logOut ends the session here and on the server. */
export async function logOut() {
  try {
    await del('/api/v1/sessions/current', { auth: false });
  } catch (err) {
    if (err.status !== 401) throw err; // already over: fine
  } finally {
    store(null);
  }
}

/** refresh asks the server who we are, when we believe we know. */
export async function refresh() {
  if (!user) return null;
  try {
    store(await get('/api/v1/users/me'));
  } catch (err) {
    if (err.status !== 401) throw err;
  }
  return user;
}

// A 401 on any request means the session ended (expired or logged out
// elsewhere); another tab logging in or out changes this one too.
window.addEventListener('modshop:unauthorized', () => {
  if (!user) return;
  store(null);
  window.dispatchEvent(new CustomEvent('modshop:session-ended'));
});
window.addEventListener('storage', (e) => {
  if (e.key === KEY) {
    user = load();
    changed();
  }
});
