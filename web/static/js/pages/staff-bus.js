// Staff: the event bus. How far each consumer lags behind its topic, the
// consumers retrying a transient failure (the database or the broker away),
// and the dead letters (messages a handler could not apply) to inspect,
// replay or discard.
import { del, get, post, query } from '../api.js';
import { busy, h, replace, toast } from '../dom.js';
import { clock } from '../format.js';
import { actionError, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { staffForbidden, staffNav, staffOnly } from '../widgets/staff.js';
import { timeTag } from '../widgets/time.js';

const REFRESH_MS = 5000;

// A consumer group is active while a subscriber of it runs somewhere; one
// that has not run for the group expiry no longer holds back the pruning of
// old messages, and shows here as inactive. A group whose position was
// restored from another cluster reads nothing new until it is reset.
function groupState(c) {
  if (c.position_ahead) {
    return h('span', { class: 'badge status-cancelled group-state', title: 'This group\'s position is beyond every transaction id of this database server: it was restored from another server. The group reads no new message, and its topic is not pruned, until the positions are reset (docs/bus.md, Restoring a dump into another cluster).' }, 'position ahead');
  }
  if (c.active) return h('span', { class: 'badge status-confirmed group-state' }, 'active');
  return [
    h('span', { class: 'badge status-pending group-state', title: 'No subscriber of this group has run within the group expiry: it no longer holds back the pruning of old messages. If it runs again, it goes on from the oldest message still kept.' }, 'inactive'),
    ' last ran ', timeTag(c.last_seen),
  ];
}

function publishedCell(t) {
  if (!t.pruned) return String(t.published);
  return [String(t.published), h('br'), h('span', { class: 'muted pruned' }, `${t.pruned} pruned`)];
}

// processes is how many processes reported the rows: through the gateway
// of a split shop, every module process's; then each row names its own.
function processes(rows) {
  return new Set(rows.map((r) => r.process).filter(Boolean)).size;
}

function processTag(c, multi) {
  return multi && c.process ? [h('br'), h('span', { class: 'muted process' }, `in ${c.process}`)] : null;
}

// letterPath is a dead letter's address: through the gateway, in the
// process that listed it (?process=), which alone can replay it.
function letterPath(d, suffix = '') {
  return `/api/v1/admin/dead-letters/${d.id}${suffix}${d.process ? query({ process: d.process }) : ''}`;
}

function consumersTable(topics) {
  const rows = [];
  const multi = processes(topics.flatMap((t) => t.consumers)) > 1;
  for (const t of [...topics].sort((a, b) => a.topic.localeCompare(b.topic))) {
    const consumers = t.consumers.length ? t.consumers : [null];
    for (const c of consumers) {
      const attention = c && (c.lag > 0 || c.dead_letters > 0 || !c.active || c.position_ahead || c.retrying_since);
      rows.push(h('tr', { 'data-topic': t.topic, 'data-handler': c ? c.handler : '', 'data-process': c && c.process ? c.process : null, 'data-active': c ? String(c.active) : '', 'data-position-ahead': c && c.position_ahead ? 'true' : null, class: attention ? 'attention' : null },
        h('td', { 'data-label': 'Topic' }, h('code', {}, t.topic)),
        h('th', { scope: 'row', 'data-label': 'Consumer' }, c ? [h('code', {}, c.handler), processTag(c, multi)] : h('span', { class: 'muted' }, 'no consumer here')),
        h('td', { 'data-label': 'State', class: 'state' }, c ? groupState(c) : '—'),
        h('td', { 'data-label': 'Published', class: 'num published' }, publishedCell(t)),
        h('td', { 'data-label': 'Lag', class: 'num lag' }, c ? String(c.lag) : '—'),
        h('td', { 'data-label': 'Dead letters', class: 'num dead' }, c ? String(c.dead_letters) : '—'),
        h('td', { 'data-label': 'Last processed' }, c ? timeTag(c.last_processed) : '—'),
        h('td', { 'data-label': 'Last published' }, timeTag(t.last_published))));
    }
  }
  if (!rows.length) return h('p', {}, 'No topics yet.');
  return h('table', { class: 'lines stacked', id: 'bus-consumers' },
    h('caption', { class: 'visually-hidden' }, 'Consumers and their lag'),
    h('thead', {}, h('tr', {}, ['Topic', 'Consumer', 'State', 'Published', 'Lag', 'Dead letters', 'Last processed', 'Last published'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows));
}

// A consumer retrying a transient failure pauses and tries the same message
// again until it succeeds; the messages behind it wait. Apart from the dead
// letters: nothing here needs staff to act, only perhaps the database or
// the broker.
function retryingList(topics) {
  const items = [];
  for (const t of [...topics].sort((a, b) => a.topic.localeCompare(b.topic))) {
    for (const c of t.consumers) {
      if (!c.retrying_since) continue;
      items.push(h('li', { class: 'card retrying', 'data-topic': t.topic, 'data-handler': c.handler },
        h('h3', { class: 'card-title' }, h('code', {}, t.topic), ' → ', h('code', {}, c.handler)),
        h('p', { class: 'muted' }, 'Retrying since ', timeTag(c.retrying_since),
          h('span', { class: 'retries' }, `; ${c.retries} transient failure${c.retries === 1 ? '' : 's'}`)),
        h('pre', { class: 'error-text last-error' }, c.last_error || '')));
    }
  }
  if (!items.length) return h('p', { id: 'no-retrying' }, 'No consumer is retrying: nothing is waiting for the database or the broker.');
  return h('ul', { class: 'list', id: 'retrying-groups' }, items);
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function deadLetterCard(d, reload, key, multi) {
  const inspectPanel = h('div', { class: 'inspect', id: `dead-letter-${key}-details`, hidden: true });
  const inspect = h('button', { type: 'button', class: 'secondary small inspect-button', 'aria-expanded': 'false', 'aria-controls': inspectPanel.id }, 'Inspect');
  const replay = h('button', { type: 'button', class: 'small replay-button' }, 'Replay');
  const discard = h('button', { type: 'button', class: 'danger small discard-button' }, 'Discard');
  const keep = h('button', { type: 'button', class: 'secondary small keep-button', hidden: true }, 'Keep it');
  const open = !d.resolved_at;
  const card = h('li', { class: 'card dead-letter', id: `dead-letter-${key}`, 'data-id': String(d.id), 'data-process': d.process || null, 'data-message-id': d.message_id, 'data-resolution': d.resolution || 'open' },
    h('h3', { class: 'card-title' }, `#${d.id} `, h('code', {}, d.topic), ' → ', h('code', {}, d.handler), multi && d.process ? h('span', { class: 'muted process' }, ` in ${d.process}`) : null),
    h('p', { class: 'muted' }, 'Failed ', timeTag(d.failed_at), ` after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}`,
      d.replays ? `; replayed ${d.replays} time${d.replays === 1 ? '' : 's'}` : '',
      d.resolution ? ['; ', h('strong', {}, d.resolution), ' ', timeTag(d.resolved_at)] : ''),
    h('pre', { class: 'error-text' }, d.error),
    h('div', { class: 'actions' }, inspect, open ? [replay, discard, keep] : null),
    actionError(`dead-letter-${key}-error`),
    inspectPanel);

  inspect.addEventListener('click', async () => {
    if (!inspectPanel.hidden) {
      inspectPanel.hidden = true;
      inspect.textContent = 'Inspect';
      inspect.setAttribute('aria-expanded', 'false');
      return;
    }
    const restore = busy(inspect, 'Loading…');
    try {
      const full = await get(letterPath(d));
      restore();
      replace(inspectPanel,
        h('h4', {}, 'Payload'), h('pre', { class: 'payload' }, full.payload === null ? '(not JSON: the bytes could not be shown)' : pretty(full.payload)),
        h('h4', {}, 'Metadata'), h('pre', { class: 'metadata' }, pretty(full.metadata)),
        h('h4', {}, 'Message id'), h('p', {}, h('code', {}, full.message_id)));
      inspectPanel.hidden = false;
      inspect.textContent = 'Hide';
      inspect.setAttribute('aria-expanded', 'true');
    } catch (err) {
      restore();
      showError(card, err);
    }
  });

  replay.addEventListener('click', async () => {
    const restore = busy(replay, 'Replaying…');
    try {
      await post(letterPath(d, '/replay'));
      toast(`Dead letter #${d.id} replayed: ${d.handler} applied it.`);
      reload();
    } catch (err) {
      restore();
      showError(card, err);
    }
  });

  // Discarding drops the message for good, so it asks once more, inline
  // (a confirm() dialog would block the page).
  let armed = false;
  const disarm = () => {
    armed = false;
    discard.textContent = 'Discard';
    keep.hidden = true;
  };
  keep.addEventListener('click', disarm);
  discard.addEventListener('click', async () => {
    if (!armed) {
      armed = true;
      discard.textContent = 'Really discard?';
      keep.hidden = false;
      discard.focus();
      return;
    }
    const restore = busy(discard, 'Discarding…');
    try {
      await del(letterPath(d));
      toast(`Dead letter #${d.id} discarded.`);
      reload();
    } catch (err) {
      restore();
      disarm();
      showError(card, err);
    }
  });
  return card;
}

/** staffBusPage: /staff/bus?state=open|all */
export async function staffBusPage(ctx) {
  if (!staffOnly(ctx)) return;
  ctx.title('Event bus');
  const state = ctx.query.get('state') === 'all' ? 'all' : 'open';
  let overview;
  let letters;
  try {
    [overview, letters] = await Promise.all([
      get('/api/v1/admin/bus', { signal: ctx.signal }),
      get(`/api/v1/admin/dead-letters${query({ state, limit: 50 })}`, { signal: ctx.signal }),
    ]);
  } catch (err) {
    return staffForbidden(ctx, err);
  }

  const consumers = h('div', { id: 'bus-overview' });
  const retrying = h('div', { id: 'bus-retrying' });
  const updated = h('p', { class: 'muted', id: 'bus-updated', role: 'status' });
  const list = h('div', { id: 'dead-letters' });

  const drawOverview = (o) => {
    replace(consumers, consumersTable(o.topics));
    replace(retrying, retryingList(o.topics));
    updated.textContent = `Updated at ${clock()}; refreshes every ${REFRESH_MS / 1000} s.`;
  };
  const drawLetters = (items) => {
    // Ids are per process: through the gateway two processes may each
    // have a #1; then the element ids name the process too.
    const count = new Map();
    for (const d of items) count.set(d.id, (count.get(d.id) || 0) + 1);
    const key = (d) => (count.get(d.id) > 1 && d.process ? `${d.id}-${d.process.replace(/[^A-Za-z0-9_-]/g, '-')}` : String(d.id));
    const multi = processes(items) > 1;
    replace(list, items.length
      ? h('ul', { class: 'list' }, items.map((d) => deadLetterCard(d, reloadAll, key(d), multi)))
      : h('p', { id: 'no-dead-letters' }, state === 'open' ? 'No open dead letters: every message was applied.' : 'No dead letters.'));
  };
  const reloadOverview = async () => {
    try {
      drawOverview(await get('/api/v1/admin/bus', { signal: ctx.signal }));
    } catch (err) {
      if (err.name !== 'AbortError') updated.textContent = `Could not refresh: ${err.summary}`;
    }
  };
  async function reloadAll() {
    list.setAttribute('aria-busy', 'true');
    try {
      const [o, l] = await Promise.all([
        get('/api/v1/admin/bus', { signal: ctx.signal }),
        get(`/api/v1/admin/dead-letters${query({ state, limit: 50 })}`, { signal: ctx.signal }),
      ]);
      drawOverview(o);
      drawLetters(l.items);
    } catch (err) {
      if (err.name !== 'AbortError') updated.textContent = `Could not refresh: ${err.summary}`;
    } finally {
      list.removeAttribute('aria-busy');
    }
  }

  const timer = setInterval(reloadOverview, REFRESH_MS);
  ctx.onLeave(() => clearInterval(timer));

  const filter = h('form', { class: 'search compact', id: 'dead-letter-filter' },
    field({ id: 'dead-letter-state', name: 'state', label: 'Show', kind: 'select', value: state, options: [{ value: 'open', label: 'Open dead letters' }, { value: 'all', label: 'All, with replayed and discarded' }] }),
    h('button', { type: 'submit' }, 'Show'),
    h('button', { type: 'button', class: 'secondary', id: 'bus-refresh', onclick: reloadAll }, 'Refresh'));
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    const s = filter.elements.state.value;
    navigate(`/staff/bus${s === 'all' ? '?state=all' : ''}`);
  });
  filter.elements.state.addEventListener('change', () => filter.requestSubmit());

  replace(ctx.main,
    staffNav('/staff/bus'),
    h('h1', {}, 'Event bus'),
    h('section', { 'aria-labelledby': 'consumers-heading' },
      h('h2', { id: 'consumers-heading' }, 'Consumers'),
      h('p', { class: 'note' }, 'Lag is how many published messages a consumer has not processed yet; a message that keeps failing becomes a dead letter so that the ones behind it flow. '
        + 'Old messages are deleted once every active consumer has processed them; a consumer that has not run for a long while is inactive and no longer holds them back.'),
      updated, consumers),
    h('section', { 'aria-labelledby': 'retrying-heading' },
      h('h2', { id: 'retrying-heading' }, 'Retrying'),
      h('p', { class: 'note' }, 'A consumer that fails for a reason of the moment (the database or the message broker away, a conflict with another transaction) '
        + 'pauses and tries the same message again, for as long as it takes; the messages behind it wait, and none of them becomes a dead letter.'),
      retrying),
    h('section', { 'aria-labelledby': 'dead-letters-heading' },
      h('h2', { id: 'dead-letters-heading' }, 'Dead letters'),
      filter, list));
  drawOverview(overview);
  drawLetters(letters.items);
}
