// Refunds and returns of a confirmed order, on its order page: what the
// customer sees of them, and the staff's actions (refund by line, by
// amount or all that is left, with a reason; record goods that came back).
// Each click sends a new Idempotency-Key: a request the network retried
// refunds nothing twice, and a second click is a second refund.
import { newKey, post } from '../api.js';
import { busy, h, toast } from '../dom.js';
import { cents, money, price } from '../format.js';
import { actionError, clearErrors, field, showError } from '../forms.js';
import { timeTag } from './time.js';

const STATE_LABELS = { none: 'Not refunded', partly_refunded: 'Partly refunded', refunded: 'Refunded' };

function nameOf(o, productID) {
  return o.items.find((it) => it.product_id === productID)?.name ?? 'a product';
}

/** refundSummary shows an order's refund state, what came back and each
 * refund; null for an order never refunded. */
export function refundSummary(o) {
  if (!o.refunds?.length) return null;
  return h('section', { 'aria-labelledby': 'refunds-heading', id: 'order-refunds' },
    h('h2', { id: 'refunds-heading' }, 'Refunds'),
    h('p', {},
      h('span', { class: `badge refund-${o.refund_state}`, id: 'refund-state', 'data-refund-state': o.refund_state }, STATE_LABELS[o.refund_state]),
      ' ', h('span', { id: 'refunded-amount' }, `${price(o.refunded, o.currency)} of ${price(o.total, o.currency)} refunded`)),
    h('ul', { class: 'refunds', id: 'refund-list' }, o.refunds.map((r) => h('li', { 'data-refund-status': r.status },
      h('strong', {}, price(r.amount, o.currency)),
      r.status === 'succeeded' ? [' refunded ', timeTag(r.refunded_at)]
        : r.status === 'failed' ? [' not refunded: the payment provider refused it ', timeTag(r.failed_at),
          r.failure_reason ? h('span', { class: 'muted' }, ` (${r.failure_reason})`) : null]
          : ' being refunded…',
      r.reason ? ` — ${r.reason}` : '',
      r.lines.length ? h('span', { class: 'muted' }, ` (${r.lines.map((l) => `${l.quantity} × ${nameOf(o, l.product_id)}`).join(', ')})`) : null))));
}

/** leftToRefund is the order's total less every refund asked for that did
 * not fail, in cents. */
function leftToRefund(o) {
  return cents(o.total) - o.refunds.filter((r) => r.status !== 'failed').reduce((sum, r) => sum + cents(r.amount), 0);
}

/** quantities builds one number field per line, at most max(line) each. */
function quantities(o, prefix, max) {
  return h('div', { class: 'refund-lines' }, o.items.map((it, i) => field({
    id: `${prefix}-qty-${i}`, name: 'lines', type: 'number', value: '0',
    label: `${it.name ?? 'Product'} (${max(it)} of ${it.quantity} left)`,
    attrs: { min: '0', max: String(max(it)), inputmode: 'numeric', 'data-product-id': it.product_id },
  })));
}

/** chosenLines reads the lines with a quantity above 0. */
function chosenLines(form) {
  return [...form.querySelectorAll('input[name="lines"]')]
    .map((el) => ({ product_id: el.dataset.productId, quantity: Number(el.value) }))
    .filter((l) => l.quantity !== 0);
}

/** staffRefundActions builds the staff's refund and return forms for a
 * confirmed order at url; changed(order) gets the order each answers. */
export function staffRefundActions(o, url, changed, signal) {
  const left = leftToRefund(o);
  const refundForm = h('form', { id: 'refund-form', class: 'refund-form', novalidate: true },
    h('h3', {}, 'Refund'),
    h('p', { class: 'hint' }, `${money(left)} left to refund. Refund lines at their price, or an amount.`),
    quantities(o, 'refund', (it) => it.quantity - it.refunded_quantity),
    field({ id: 'refund-amount', name: 'amount', label: 'Amount', hint: 'Instead of lines, e.g. 5.00', attrs: { inputmode: 'decimal', autocomplete: 'off' } }),
    field({ id: 'refund-reason', name: 'reason', label: 'Reason', attrs: { maxlength: '200' } }),
    h('p', { class: 'actions' },
      h('button', { type: 'submit', id: 'refund-submit' }, 'Refund'),
      h('button', { type: 'button', id: 'refund-rest', class: 'secondary', disabled: left <= 0 }, `Refund all that is left (${money(left)})`)),
    actionError('refund-error'));
  const returnForm = h('form', { id: 'return-form', class: 'refund-form', novalidate: true },
    h('h3', {}, 'Goods came back'),
    h('p', { class: 'hint' }, 'Puts them back in stock; refund them separately.'),
    quantities(o, 'return', (it) => it.quantity - it.returned_quantity),
    h('p', { class: 'actions' }, h('button', { type: 'submit', id: 'return-submit' }, 'Record return')),
    actionError('return-error'));

  const send = async (form, button, label, path, body) => {
    clearErrors(form);
    const restore = busy(button, label);
    try {
      const order = await post(`${url}/${path}`, body, { signal, headers: { 'Idempotency-Key': newKey() } });
      restore();
      toast(path === 'refunds' ? 'Refund requested.' : 'Return recorded.');
      changed(order);
    } catch (err) {
      if (err.name === 'AbortError') return;
      restore();
      showError(form, err);
    }
  };
  refundForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const amount = refundForm.elements.amount.value.trim();
    const reason = refundForm.elements.reason.value.trim();
    send(refundForm, e.submitter || refundForm.querySelector('#refund-submit'), 'Refunding…', 'refunds',
      amount ? { amount, reason } : { lines: chosenLines(refundForm), reason });
  });
  refundForm.querySelector('#refund-rest').addEventListener('click', (e) => {
    send(refundForm, e.currentTarget, 'Refunding…', 'refunds', { amount: money(left).replaceAll(',', ''), reason: refundForm.elements.reason.value.trim() });
  });
  returnForm.addEventListener('submit', (e) => {
    e.preventDefault();
    send(returnForm, e.submitter || returnForm.querySelector('#return-submit'), 'Recording…', 'returns', { lines: chosenLines(returnForm) });
  });
  return h('section', { 'aria-labelledby': 'staff-refunds-heading', id: 'staff-refunds' },
    h('h2', { id: 'staff-refunds-heading' }, 'Refunds and returns'),
    h('div', { class: 'refund-actions' }, refundForm, returnForm));
}
