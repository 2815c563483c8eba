// Shipping and fulfilment of an order: what the customer's order page
// shows (method, address, shipped with what tracking number), and the
// staff's ship and deliver actions beside it. Fulfilment moves beside the
// status (ADR 0032), so these are drawn apart from the status line.
import { post } from '../api.js';
import { busy, h, replace } from '../dom.js';
import { humanize, price, when } from '../format.js';
import { actionError, field, showError } from '../forms.js';

const regionNames = typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(undefined, { type: 'region' }) : null;

/** countryName names an ISO 3166-1 alpha-2 code in the reader's language. */
export function countryName(code) {
  try {
    return regionNames?.of(code) ?? code;
  } catch {
    return code;
  }
}

/** addressLines shows a shipping address as a postal block. */
export function addressLines(a, id) {
  const parts = [a.name, a.line1, a.line2, [a.postal_code, a.city].filter(Boolean).join(' '), countryName(a.country)].filter(Boolean);
  return h('address', { id, class: 'ship-address' }, parts.flatMap((p, i) => (i ? [h('br'), p] : [p])));
}

function explain(o) {
  const f = o.fulfilment;
  const pickup = o.shipping_method.code === 'pickup';
  switch (f.state) {
    case 'shipped': return `Shipped ${when(f.shipped_at)} with ${f.carrier}.`;
    case 'delivered': return pickup ? `Collected ${when(f.delivered_at)}.` : `Delivered ${when(f.delivered_at)}.`;
    default:
      if (o.status === 'rejected' || o.status === 'cancelled') return `Nothing will be sent: the order was ${o.status}.`;
      if (o.status !== 'confirmed') return pickup ? 'To be collected in store once the order is confirmed.' : 'Ships once the order is confirmed.';
      if (o.refund_state === 'refunded') return 'Nothing will be sent: the order was refunded in full.';
      return pickup ? 'Ready to collect in store.' : 'Being prepared for shipping.';
  }
}

/** shippingSection shows the order's delivery: method and price, address,
 * fulfilment state, carrier and tracking number. */
export function shippingSection(o) {
  const f = o.fulfilment;
  return h('section', { 'aria-labelledby': 'shipping-heading', id: 'order-shipping' },
    h('h2', { id: 'shipping-heading' }, 'Delivery'),
    h('p', {}, h('span', { class: `badge fulfilment-${f.state}`, id: 'order-fulfilment', 'data-state': f.state }, humanize(f.state)),
      ' ', h('span', { id: 'fulfilment-explain' }, explain(o))),
    h('dl', { class: 'ship-facts' },
      h('dt', {}, 'Method'),
      h('dd', { id: 'order-shipping-method' }, `${o.shipping_method.label} — ${price(o.shipping_method.price, o.currency)}`),
      o.shipping_address ? [h('dt', {}, 'Ship to'), h('dd', {}, addressLines(o.shipping_address, 'order-address'))] : null,
      f.tracking_number ? [
        h('dt', {}, 'Carrier'), h('dd', { id: 'order-carrier' }, f.carrier),
        h('dt', {}, 'Tracking number'), h('dd', {}, h('code', { id: 'order-tracking' }, f.tracking_number)),
      ] : null));
}

/** fulfilmentActions are the staff's next step for a confirmed order:
 * ship it (carrier, tracking number), then mark it delivered; a pickup
 * order is marked collected. onChange gets the order as it is after. */
export function fulfilmentActions(o, onChange) {
  const f = o.fulfilment;
  const pickup = o.shipping_method.code === 'pickup';
  if (o.status !== 'confirmed' || f.state === 'delivered') return null;
  if (f.state === 'unfulfilled' && o.refund_state === 'refunded') return null;
  const url = `/api/v1/orders/${encodeURIComponent(o.id)}`;
  if (f.state === 'unfulfilled' && !pickup) {
    const submit = h('button', { type: 'submit', id: 'ship-order' }, 'Mark shipped');
    const form = h('form', { class: 'ship-form', id: 'ship-form', novalidate: true },
      h('h3', {}, 'Ship this order'),
      field({ id: 'ship-carrier', name: 'carrier', label: 'Carrier', attrs: { required: true, maxlength: 60 } }),
      field({ id: 'ship-tracking', name: 'tracking_number', label: 'Tracking number', attrs: { required: true, maxlength: 60, autocomplete: 'off', spellcheck: 'false' } }),
      h('div', { class: 'actions' }, submit),
      actionError('ship-error'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const restore = busy(submit, 'Saving…');
      try {
        onChange(await post(`${url}/shipment`, { carrier: form.elements.carrier.value, tracking_number: form.elements.tracking_number.value }));
      } catch (err) {
        restore();
        showError(form, err);
      }
    });
    return h('section', { class: 'staff-fulfilment', 'aria-label': 'Fulfilment (staff)' }, form);
  }
  const button = h('button', { type: 'button', id: 'deliver-order' }, pickup ? 'Mark collected' : 'Mark delivered');
  const box = h('section', { class: 'staff-fulfilment', 'aria-label': 'Fulfilment (staff)' }, button, actionError('deliver-error'));
  button.addEventListener('click', async () => {
    const restore = busy(button, 'Saving…');
    try {
      onChange(await post(`${url}/delivery`));
    } catch (err) {
      restore();
      showError(box, err);
    }
  });
  return box;
}

/** drawShipping redraws an order page's delivery section (and the
 * staff's actions in it). */
export function drawShipping(slot, o, staff, onChange) {
  replace(slot, shippingSection(o), staff ? fulfilmentActions(o, onChange) : null);
}
