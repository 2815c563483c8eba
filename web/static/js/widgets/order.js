// What the customer's and the staff's order pages share: the statuses, the
// status badge, the saga's timeline and the order card of a list.
import { h } from '../dom.js';
import { clock, humanize, paymentMethod, price, readable, shortID, stepName, when } from '../format.js';
import { timeTag } from './time.js';

export const FINAL = new Set(['confirmed', 'rejected', 'cancelled']);
export const STATUSES = ['pending', 'awaiting_payment', 'confirmed', 'rejected', 'cancelled'];

/** statusBadge shows an order status; data-status holds the raw value. */
export function statusBadge(status, id) {
  return h('span', { class: `badge status-${status}`, id, 'data-status': status }, humanize(status));
}

/** timeline lists the saga's steps, oldest first, in words: each step's
 * name, its detail with the order's product names, and its local time (the
 * date too where a step falls on another day than the one before it). */
export function timeline(o, id) {
  let day = '';
  return h('ol', { class: 'timeline', id },
    o.timeline.map((t) => {
      const d = new Date(t.at).toDateString();
      const format = d === day ? clock : when;
      day = d;
      const name = stepName(t.step);
      let detail = readable(t.detail, o);
      if (detail.toLowerCase().startsWith(`${name.toLowerCase()}: `)) detail = detail.slice(name.length + 2); // said once
      return h('li', { 'data-step': t.step },
        timeTag(t.at, format), ' ',
        h('strong', {}, name),
        detail ? h('span', { class: 'detail' }, ` — ${detail}`) : null);
    }));
}

/** NOT_CHARGED is the total of an order that charged nothing. */
export const NOT_CHARGED = 'not charged';

/** totalText is an order's total as its state allows: final totals for a
 * final order, never "after reservation" (a rejected order, or one ended
 * before it was priced, was not charged). */
export function totalText(o) {
  if (o.status === 'rejected') return NOT_CHARGED;
  if (o.total === null) return FINAL.has(o.status) ? NOT_CHARGED : 'after reservation';
  return price(o.total, o.currency);
}

/** traceRef shows staff the trace an order was placed in: its id, as a
 * link to the operator's tracing UI when the shop has one
 * (MODSHOP_TRACE_URL_TEMPLATE), in a new tab. Nothing for an order placed
 * untraced, nor for a customer (the API gives them no trace_id). */
export function traceRef(o) {
  if (!o.trace_id) return null;
  const label = `trace ${o.trace_id}`;
  const link = typeof o.trace_url === 'string' && /^https?:\/\//i.test(o.trace_url);
  return h('span', { class: 'trace-ref muted', 'data-trace-id': o.trace_id },
    link ? h('a', { href: o.trace_url, class: 'trace-link', target: '_blank', rel: 'noopener noreferrer', title: 'Open this trace in the tracing UI' }, label)
      : h('code', { class: 'trace-id' }, label));
}

/** customerRef shows staff who placed an order: the display name and
 * username from the order module's copy of the accounts, linked to the
 * account on the staff users page (contact details live there, not in
 * orders); the id's start while the copy does not know the account yet. */
export function customerRef(o) {
  const c = o.customer || { id: o.user_id, username: null, display_name: null };
  if (!c.username) return h('span', { class: 'customer-ref', 'data-customer-id': c.id }, `customer ${shortID(c.id)}`);
  const label = c.display_name ? `${c.display_name} (${c.username})` : c.username;
  return h('span', { class: 'customer-ref', 'data-customer-id': c.id }, 'customer ',
    h('a', { href: `/staff/users?q=${encodeURIComponent(c.username)}`, class: 'customer-link' }, label));
}

/** orderCard summarizes an order in a list. */
export function orderCard(o, withTimeline) {
  const n = o.items.reduce((sum, it) => sum + it.quantity, 0);
  const total = totalText(o);
  return h('li', { class: 'card order-card', 'data-order-id': o.id, 'data-status': o.status },
    h('h2', { class: 'card-title' }, h('a', { href: `/orders/${o.id}` }, `Order ${shortID(o.id)}`)),
    h('p', {}, statusBadge(o.status), ' ', h('span', { class: 'muted' }, timeTag(o.created_at))),
    h('p', {}, `${n} item${n === 1 ? '' : 's'} · ${total === NOT_CHARGED ? total : `total ${total}`} · ${paymentMethod(o.payment_method)}`,
      o.cancel_reason ? ` · ${humanize(o.cancel_reason).toLowerCase()}` : '',
      withTimeline ? h('span', { class: 'muted' }, ' · ', customerRef(o)) : ''),
    withTimeline && o.shipping_method ? h('p', { class: 'order-fulfilment' }, `${o.shipping_method.label} · ${humanize(o.fulfilment.state).toLowerCase()}`,
      o.shipping_address ? ` · to ${o.shipping_address.city}, ${o.shipping_address.country}` : '') : null,
    withTimeline && o.trace_id ? h('p', { class: 'order-trace' }, traceRef(o)) : null,
    withTimeline ? h('details', { class: 'order-timeline' },
      h('summary', {}, `Timeline (${o.timeline.length} step${o.timeline.length === 1 ? '' : 's'})`),
      timeline(o)) : null);
}
