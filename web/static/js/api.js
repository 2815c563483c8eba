// The shop's JSON API, as the pages use it. Requests go to the same origin,
// so the browser sends the HttpOnly session cookie by itself and the
// server's cross-origin protection lets them through. Every error answer is
// application/problem+json (RFC 9457); ApiError carries it.

/** ApiError is a failed request: the problem the server sent, or one made
 * up here when the server could not be reached. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }

  /** fieldErrors lists the invalid fields the problem names. */
  get fieldErrors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }

  /** summary is one sentence for people. */
  get summary() {
    const p = this.problem;
    if (this.status === 0) return p.detail;
    if (p.detail) return p.detail.charAt(0).toUpperCase() + p.detail.slice(1) + (/[.!?]$/.test(p.detail) ? '' : '.');
    return p.title || `The request failed (${this.status}).`;
  }
}

/** request sends one API request and returns the decoded body (null for 204).
 * opts: body (sent as JSON) or file (a Blob sent as it is), headers, signal, and auth: false for requests
 * whose 401 does not mean "the session ended" (logging in). */
export async function request(method, path, opts = {}) {
  const headers = { Accept: 'application/json', ...(opts.headers || {}) };
  const init = { method, headers, signal: opts.signal, credentials: 'same-origin', cache: 'no-store' };
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(opts.body);
  } else if (opts.file !== undefined) {
    headers['Content-Type'] = opts.file.type || 'application/octet-stream';
    init.body = opts.file;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, {
      title: 'Network error',
      detail: 'The shop could not be reached. Check your connection and try again.',
    });
  }
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  let body = null;
  if (type.includes('json')) {
    try {
      body = await res.json();
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      body = null;
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, body || { title: res.statusText || 'Error', status: res.status });
    if (res.status === 401 && opts.auth !== false) {
      window.dispatchEvent(new CustomEvent('modshop:unauthorized'));
    }
    throw err;
  }
  return body;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });
export const patch = (path, body, opts = {}) => request('PATCH', path, { ...opts, body });
export const put = (path, body, opts = {}) => request('PUT', path, { ...opts, body });
export const del = (path, opts) => request('DELETE', path, opts);

/** query builds "?a=1&b=2" from the values that are set. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** newKey makes an idempotency key (a random UUID). crypto.randomUUID needs
 * a secure context; getRandomValues works everywhere. */
export function newKey() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
