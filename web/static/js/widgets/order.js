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

/** orderCard summarizes an order in a list. */
export function orderCard(o, withTimeline) {
  const n = o.items.reduce((sum, it) => sum + it.quantity, 0);
  return h('li', { class: 'card order-card', 'data-order-id': o.id, 'data-status': o.status },
    h('h2', { class: 'card-title' }, h('a', { href: `/orders/${o.id}` }, `Order ${shortID(o.id)}`)),
    h('p', {}, statusBadge(o.status), ' ', h('span', { class: 'muted' }, timeTag(o.created_at))),
    h('p', {}, `${n} item${n === 1 ? '' : 's'} · ${o.total === null ? 'total after reservation' : `total ${price(o.total)}`} · ${o.payment_method}`,
      o.cancel_reason ? ` · ${humanize(o.cancel_reason).toLowerCase()}` : '',
      withTimeline ? h('span', { class: 'muted' }, ` · customer ${shortID(o.user_id)}`) : ''),
    withTimeline && o.shipping_method ? h('p', { class: 'order-fulfilment' }, `${o.shipping_method.label} · ${humanize(o.fulfilment.state).toLowerCase()}`,
      o.shipping_address ? ` · to ${o.shipping_address.city}, ${o.shipping_address.country}` : '') : null,
    withTimeline && o.trace_id ? h('p', { class: 'order-trace' }, traceRef(o)) : null,
    withTimeline ? h('details', { class: 'order-timeline' },
      h('summary', {}, `Timeline (${o.timeline.length} step${o.timeline.length === 1 ? '' : 's'})`),
      timeline(o)) : null);
}
