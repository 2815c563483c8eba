// A small history-API router: real URLs (/products/…, /orders/…, /staff/…)
// that the server answers with index.html, so a reload or a shared link
// opens the same page; any other address gets index.html with status 404,
// and the router draws its not-found view there. Each page renders into <main> and may register
// cleanups (stop polling) that run when the visitor leaves it.
import { h, done, loading, replace } from './dom.js';

const routes = [];
const afterRender = new Set();
let current = null;
let firstRender = true;

/**
 * route registers render(ctx) for a path pattern such as /orders/:id. A
 * path matches exactly (no trailing slash), as the server's list of pages
 * does (web.go, kept equal to the route() calls in main.js by a test): a
 * page the server answers with 404 is one this router has no route for.
 */
export function route(pattern, render) {
  const keys = [];
  const source = pattern.replace(/:(\w+)/g, (_, key) => {
    keys.push(key);
    return '([^/]+)';
  });
  routes.push({ re: new RegExp(`^${source}$`), keys, render });
}

/** onRendered calls fn after every page change (to mark the active link). */
export function onRendered(fn) {
  afterRender.add(fn);
}

/** navigate goes to url within the page. */
export function navigate(url, { replace: replaceEntry = false } = {}) {
  if (replaceEntry) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  return render();
}

function match(path) {
  for (const r of routes) {
    const m = r.re.exec(path);
    if (m) {
      const params = {};
      r.keys.forEach((k, i) => {
        params[k] = decodeURIComponent(m[i + 1]);
      });
      return { render: r.render, params };
    }
  }
  return null;
}

/** render draws the page of the current URL. */
export async function render() {
  if (current) {
    current.controller.abort();
    for (const fn of current.cleanups) fn();
  }
  const controller = new AbortController();
  const cleanups = [];
  current = { controller, cleanups };
  const url = new URL(location.href);
  const main = document.getElementById('main');
  const found = match(url.pathname) || { render: notFound, params: {} };
  const ctx = {
    url,
    params: found.params,
    query: url.searchParams,
    main,
    signal: controller.signal,
    onLeave: (fn) => cleanups.push(fn),
    title: (t) => {
      document.title = t ? `${t} · modshop` : 'modshop';
    },
    get active() {
      return !controller.signal.aborted;
    },
  };
  loading(main);
  try {
    await found.render(ctx);
  } catch (err) {
    if (err.name === 'AbortError' || controller.signal.aborted) return;
    showPageError(ctx, err);
  }
  if (controller.signal.aborted) return;
  done(main);
  for (const fn of afterRender) fn(url);
  if (!firstRender) {
    window.scrollTo(0, 0);
    const heading = main.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  }
  firstRender = false;
}

/** showPageError replaces the page with what went wrong. */
export function showPageError(ctx, err) {
  const status = err.status;
  const heading = status === 404 ? 'Not found' : status === 0 ? 'The shop cannot be reached' : 'Something went wrong';
  ctx.title(heading);
  replace(ctx.main,
    h('h1', {}, heading),
    h('div', { class: 'problem', role: 'alert' },
      h('p', {}, err.summary || err.message),
      err.problem && err.problem.request_id ? h('p', { class: 'request-id' }, `Request id: ${err.problem.request_id}`) : null),
    h('p', {}, h('a', { href: '/' }, 'Back to the shop')));
}

function notFound(ctx) {
  ctx.title('Not found');
  replace(ctx.main,
    h('h1', {}, 'Not found'),
    h('p', {}, 'There is no page at this address.'),
    h('p', {}, h('a', { href: '/' }, 'Back to the shop')));
}

const serverPaths = /^\/(api|metrics|healthz|readyz)(\/|$)/;

/** start takes over same-origin links and the back button. */
export function start() {
  document.addEventListener('click', (e) => {
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const a = e.target.closest('a[href]');
    if (!a || a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || serverPaths.test(url.pathname)) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener('popstate', () => render());
  return render();
}
