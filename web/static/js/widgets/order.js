// What the customer's and the staff's order pages share: the statuses, the
// status badge, the saga's timeline and the order card of a list.
import { h } from '../dom.js';
import { clock, humanize, price, shortID } from '../format.js';
import { timeTag } from './time.js';

export const FINAL = new Set(['confirmed', 'rejected', 'cancelled']);
export const STATUSES = ['pending', 'awaiting_payment', 'confirmed', 'rejected', 'cancelled'];

/** statusBadge shows an order status; data-status holds the raw value. */
export function statusBadge(status, id) {
  return h('span', { class: `badge status-${status}`, id, 'data-status': status }, humanize(status));
}

/** timeline lists the saga's steps, oldest first. */
export function timeline(o, id) {
  return h('ol', { class: 'timeline', id },
    o.timeline.map((t) => h('li', { 'data-step': t.step },
      timeTag(t.at, clock), ' ',
      h('strong', {}, humanize(t.step)),
      t.detail ? h('span', { class: 'detail' }, ` — ${t.detail}`) : null)));
}

/** orderCard summarizes an order in a list. */
export function orderCard(o, withTimeline) {
  const n = o.items.reduce((sum, it) => sum + it.quantity, 0);
  return h('li', { class: 'card order-card', 'data-order-id': o.id, 'data-status': o.status },
    h('h2', { class: 'card-title' }, h('a', { href: `/orders/${o.id}` }, `Order ${shortID(o.id)}`)),
    h('p', {}, statusBadge(o.status), ' ', h('span', { class: 'muted' }, timeTag(o.created_at))),
    h('p', {}, `${n} item${n === 1 ? '' : 's'} · ${o.total === null ? 'total after reservation' : `total ${price(o.total)}`} · ${o.payment_method}`,
      o.cancel_reason ? ` · ${humanize(o.cancel_reason).toLowerCase()}` : '',
      withTimeline ? h('span', { class: 'muted' }, ` · customer ${shortID(o.user_id)}`) : ''),
    withTimeline ? h('details', { class: 'order-timeline' },
      h('summary', {}, `Timeline (${o.timeline.length} step${o.timeline.length === 1 ? '' : 's'})`),
      timeline(o)) : null);
}
