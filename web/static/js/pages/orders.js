// My orders, and the order page whose status and timeline follow the saga
// live (by polling) until the order is final.
import { get, post, query } from '../api.js';
import { busy, h, replace } from '../dom.js';
import { cents, clock, humanize, money, paymentMethod, price, shortID, when } from '../format.js';
import { actionError, showError } from '../forms.js';
import { currentUser, isStaff } from '../session.js';
import { drawShipping } from '../widgets/fulfilment.js';
import { FINAL, NOT_CHARGED, customerRef, orderCard, statusBadge, timeline, totalText, traceRef } from '../widgets/order.js';
import { refundSummary, staffRefundActions } from '../widgets/refunds.js';

/** loginFirst tells an anonymous visitor to log in to see path. */
export function loginFirst(ctx, heading, path) {
  ctx.title(heading);
  replace(ctx.main,
    h('h1', {}, heading),
    h('p', { id: 'login-needed' }, 'Log in to see this page.'),
    h('p', { class: 'actions' },
      h('a', { class: 'button', href: `/login?next=${encodeURIComponent(path)}` }, 'Log in'),
      h('a', { class: 'button secondary', href: `/register?next=${encodeURIComponent(path)}` }, 'Register')));
}

function explain(o) {
  switch (o.status) {
    case 'pending': return 'We are reserving your items.';
    case 'awaiting_payment': return 'Your items are reserved. Waiting for the payment…';
    case 'confirmed': return 'Payment received: your order is confirmed. Thank you!';
    case 'rejected': return o.cancel_reason === 'total_too_large'
      ? 'The total of this order is more than one order can hold, so it was rejected. Nothing was charged; please split it into smaller orders.'
      : 'We did not have enough stock for this order, so it was rejected. Nothing was charged.';
    case 'cancelled': {
      const refunded = o.payment_state === 'refunded' ? ' The charge was refunded.'
        : o.payment_state === 'refund_requested' ? ' The charge is being refunded.' : '';
      switch (o.cancel_reason) {
        case 'payment_failed': return `The payment was declined, so the order was cancelled. Nothing was charged and the items went back on the shelf.${refunded}`;
        case 'cancelled_by_customer': return `The order was cancelled at your request; the items went back on the shelf.${refunded}`;
        case 'stock_timeout':
        case 'payment_timeout':
        case 'deadline_passed': return `A step took too long, so the order was cancelled.${refunded}`;
        default: return `The order was cancelled.${refunded}`;
      }
    }
    default: return '';
  }
}

/** settlement is the foot of a final order's lines: its total, and for a
 * cancelled one what was charged and refunded. Rows of [label, text, id]. */
function settlement(o) {
  const total = totalText(o);
  const rows = [];
  if (o.shipping_method) rows.push([`Shipping: ${o.shipping_method.label}`, price(o.shipping_method.price, o.currency), 'order-shipping-price']);
  rows.push(['Total', total === NOT_CHARGED ? 'Not charged' : total, 'order-total']);
  if (o.status !== 'cancelled') return rows;
  const charged = ['captured', 'refund_requested', 'refunded'].includes(o.payment_state);
  rows.push(['Charged', charged && o.total !== null ? price(o.total, o.currency) : 'Nothing', 'order-charged']);
  if (charged) {
    rows.push(['Refunded', o.payment_state === 'refunded' ? price(o.refunded ?? o.total, o.currency) : 'Refund under way', 'order-refunded']);
  }
  return rows;
}

function itemsTable(o) {
  return h('table', { class: 'lines', id: 'order-items' },
    h('caption', { class: 'visually-hidden' }, 'Items in this order'),
    h('thead', {}, h('tr', {}, ['Product', 'Price', 'Quantity', 'Total'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, o.items.map((it) => h('tr', {},
      h('th', { scope: 'row', 'data-label': 'Product' },
        h('a', { href: `/products/${it.product_id}` }, it.name ?? 'A product not in the catalog')),
      h('td', { 'data-label': 'Price', class: 'num' }, price(it.unit_price, o.currency)),
      h('td', { 'data-label': 'Quantity', class: 'num' }, String(it.quantity)),
      h('td', { 'data-label': 'Total', class: 'num' }, it.unit_price ? money(cents(it.unit_price) * it.quantity, o.currency) : '—')))),
    h('tfoot', {}, settlement(o).map(([label, text, id]) => h('tr', {},
      h('th', { scope: 'row', colspan: 3 }, label),
      h('td', { class: 'num', id }, text)))));
}

function paymentList(items) {
  if (!items.length) return h('p', {}, 'No payment was recorded.');
  return h('ul', { class: 'payments', id: 'order-payments' }, items.map((p) => h('li', {},
    h('strong', {}, humanize(p.status)), ` — ${price(p.amount, p.currency)} with ${paymentMethod(p.method)}`,
    p.failure_reason ? ` (${humanize(p.failure_reason).toLowerCase()})` : '',
    p.refunds.length ? h('ul', {}, p.refunds.map((r) => h('li', {}, `Refund ${humanize(r.status).toLowerCase()}: ${price(r.amount, r.currency ?? p.currency)} — ${r.reason}`))) : null)));
}

/** paid introduces the order's payment method as far as the order went. */
function paid(o) {
  if (o.status === 'confirmed') return 'Paid with';
  return FINAL.has(o.status) ? 'Payment method:' : 'Paying with';
}

const settledPayment = new Set(['captured', 'failed', 'refunded']);

/** orderPage shows one order and follows it live: /orders/:id */
export async function orderPage(ctx) {
  const path = ctx.url.pathname;
  if (!currentUser()) return loginFirst(ctx, 'Order', path);
  const url = `/api/v1/orders/${encodeURIComponent(ctx.params.id)}`;
  let order = await get(url, { signal: ctx.signal });
  ctx.title(`Order ${shortID(order.id)}`);

  const statusLine = h('div', { class: 'status-line', role: 'status', 'aria-live': 'polite', id: 'order-status-line' });
  const live = h('p', { class: 'live', id: 'order-live' });
  const items = h('section', { 'aria-labelledby': 'items-heading' });
  const steps = h('section', { 'aria-labelledby': 'timeline-heading' });
  const shipping = h('div', { class: 'order-shipping' });
  const payments = h('section', { 'aria-labelledby': 'payments-heading', hidden: true });
  const cancelButton = h('button', { type: 'button', id: 'cancel-order', class: 'secondary' }, 'Cancel order');
  const actions = h('div', { class: 'order-actions', hidden: true }, cancelButton, actionError('cancel-error'));
  const refunds = h('div', { id: 'refunds-box' });
  const staffRefunds = h('div', { id: 'staff-refunds-box' });
  let paymentsShown = false;
  let refundsDrawn = '';

  const draw = () => {
    replace(statusLine,
      h('p', {}, 'Status: ', statusBadge(order.status, 'order-status')),
      h('p', { id: 'order-explain' }, explain(order)));
    replace(items, h('h2', { id: 'items-heading' }, 'Items'), itemsTable(order),
      h('p', { class: 'muted' }, `${paid(order)} ${paymentMethod(order.payment_method)}. Placed ${when(order.created_at)}.`),
      order.trace_id ? h('p', { class: 'order-trace', id: 'order-trace' }, 'Placed in ', traceRef(order), '.') : null);
    replace(steps, h('h2', { id: 'timeline-heading' }, 'Timeline'), timeline(order, 'order-timeline'));
    drawShipping(shipping, order, isStaff(), (o) => { order = o; draw(); });
    replace(refunds, refundSummary(order));
    // When refunds or returns changed, the payment is read again; the
    // staff's forms are drawn again only then, so that polling keeps what
    // staff are typing.
    const drawn = JSON.stringify([order.status, order.refunds, order.items]);
    if (drawn !== refundsDrawn) {
      refundsDrawn = drawn;
      paymentsShown = false;
      if (isStaff()) {
        replace(staffRefunds, order.status === 'confirmed' ? staffRefundActions(order, url, (o) => { order = o; draw(); follow(); }, ctx.signal) : null);
      }
    }
    actions.hidden = FINAL.has(order.status);
    if (!paymentsShown && FINAL.has(order.status) && settledPayment.has(order.payment_state)) {
      paymentsShown = true;
      get(`/api/v1/payments${query({ order_id: order.id })}`, { signal: ctx.signal })
        .then((res) => {
          replace(payments, h('h2', { id: 'payments-heading' }, 'Payment'), paymentList(res.items));
          payments.hidden = false;
        })
        .catch(() => { paymentsShown = false; });
    }
  };

  cancelButton.addEventListener('click', async () => {
    const restore = busy(cancelButton, 'Cancelling…');
    try {
      order = await post(`${url}/cancel`, undefined, { signal: ctx.signal });
      restore();
      draw();
      follow();
    } catch (err) {
      if (err.name === 'AbortError') return;
      restore();
      showError(actions, err);
    }
  });

  // Poll quickly at first (a saga takes milliseconds to seconds), then
  // slower; stop when the order is final and its payment settled, or when
  // the visitor leaves the page.
  let timer = 0;
  let polls = 0;
  const delays = [300, 500, 700, 1000, 1500];
  const settled = () => FINAL.has(order.status) && !['requested', 'refund_requested'].includes(order.payment_state)
    && !(order.refunds || []).some((r) => r.status === 'requested');
  const follow = () => {
    clearTimeout(timer);
    if (settled()) {
      replace(live, 'Final. Checked at ', clock(), '.');
      live.classList.remove('working');
      return;
    }
    if (polls > 400) {
      replace(live, 'Stopped following this order. ', h('a', { href: path }, 'Check again'));
      return;
    }
    live.classList.add('working');
    replace(live, 'Updating live… last checked at ', clock(), '.');
    timer = setTimeout(async () => {
      polls++;
      try {
        order = await get(url, { signal: ctx.signal });
        draw();
      } catch (err) {
        if (err.name === 'AbortError') return;
        replace(live, `Could not check the order (${err.summary}) — trying again.`);
      }
      if (ctx.active) follow();
    }, delays[Math.min(polls, delays.length - 1)] * (polls > 60 ? 2 : 1));
  };
  ctx.onLeave(() => clearTimeout(timer));

  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: isStaff() && order.user_id !== currentUser().id ? '/staff/orders' : '/orders' }, '← Orders')),
    h('h1', {}, `Order ${shortID(order.id)}`),
    isStaff() && order.user_id !== currentUser().id ? h('p', { id: 'order-customer' }, customerRef(order)) : null,
    statusLine, live, actions, items, shipping, refunds, staffRefunds, steps, payments);
  draw();
  follow();
}

/** ordersPage lists the customer's orders: /orders?cursor= */
export async function ordersPage(ctx) {
  if (!currentUser()) return loginFirst(ctx, 'My orders', '/orders');
  ctx.title('My orders');
  const cursor = ctx.query.get('cursor') || '';
  const page = await get(`/api/v1/orders${query({ cursor, limit: 20 })}`, { signal: ctx.signal });
  replace(ctx.main,
    h('h1', {}, 'My orders'),
    page.items.length
      ? h('ul', { class: 'list', id: 'orders' }, page.items.map((o) => orderCard(o, false)))
      : h('p', { id: 'no-orders' }, cursor ? 'No older orders.' : 'You have not ordered anything yet. ', h('a', { href: '/' }, 'Browse the shop')),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: '/orders' }, '← Newest orders') : null,
      page.next_cursor ? h('a', { href: `/orders${query({ cursor: page.next_cursor })}`, id: 'next-page' }, 'Older orders →') : null));
}
