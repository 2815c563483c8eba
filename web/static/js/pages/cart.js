// The cart and the checkout.
import { get, post } from '../api.js';
import * as cart from '../cart.js';
import { busy, h, replace } from '../dom.js';
import { cents, money, paymentMethod, price } from '../format.js';
import { actionError, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { currentUser } from '../session.js';
import { addressFieldset, chosenShipping, shippingFieldset } from '../widgets/shipping-form.js';

/** PAYMENT_METHODS are the test provider's cards and what each does; each
 * reads as the order pages name it (format.js). */
export const PAYMENT_METHODS = [
  {
    value: 'pm_card_visa',
    label: paymentMethod('pm_card_visa'),
    help: 'The charge is approved at once: the order is confirmed and the items are yours.',
  },
  {
    value: 'pm_card_chargeDeclined',
    label: paymentMethod('pm_card_chargeDeclined'),
    help: 'The bank declines the charge: nothing is charged, the order is cancelled and the items go back on the shelf.',
  },
  {
    value: 'pm_card_delayed',
    label: paymentMethod('pm_card_delayed'),
    help: 'The charge is approved after a few seconds, so you can watch the order wait for its payment.',
  },
];

function emptyCart(ctx) {
  replace(ctx.main,
    h('h1', {}, 'Your cart'),
    h('p', { id: 'cart-empty' }, 'Your cart is empty.'),
    h('p', {}, h('a', { href: '/' }, 'Browse the shop')));
}

function cartLine(line, redraw) {
  const qtyID = `qty-${line.product_id}`;
  const qty = h('input', { type: 'number', id: qtyID, name: 'quantity', min: 1, max: cart.MAX_QUANTITY, step: 1, inputmode: 'numeric', value: line.quantity, class: 'qty' });
  qty.addEventListener('change', () => {
    const n = Number(qty.value);
    if (Number.isInteger(n) && n >= 1) cart.setQuantity(line.product_id, n);
    redraw();
  });
  return h('tr', { 'data-product-id': line.product_id },
    h('th', { scope: 'row', 'data-label': 'Product' }, h('a', { href: `/products/${line.product_id}` }, line.name)),
    h('td', { 'data-label': 'Price', class: 'num' }, price(line.price, line.currency)),
    h('td', { 'data-label': 'Quantity' },
      h('label', { for: qtyID, class: 'visually-hidden' }, `Quantity of ${line.name}`), qty),
    h('td', { 'data-label': 'Total', class: 'num' }, money(cents(line.price) * line.quantity, line.currency)),
    h('td', {}, h('button', {
      type: 'button', class: 'link danger', 'aria-label': `Remove ${line.name}`,
      onclick: () => { cart.remove(line.product_id); redraw(); },
    }, 'Remove')));
}

function linesTable(lines, redraw) {
  return h('table', { class: 'lines', id: 'cart-lines' },
    h('caption', { class: 'visually-hidden' }, 'Items in your cart'),
    h('thead', {}, h('tr', {}, ['Product', 'Price', 'Quantity', 'Total', ''].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, lines.map((l) => (redraw ? cartLine(l, redraw) : summaryLine(l)))),
    h('tfoot', {}, h('tr', {},
      h('th', { scope: 'row', colspan: 3 }, 'Subtotal'),
      h('td', { class: 'num', id: 'cart-subtotal' }, money(cart.subtotal(), cart.currency())),
      h('td', {}))));
}

function summaryLine(line) {
  return h('tr', { 'data-product-id': line.product_id },
    h('th', { scope: 'row', 'data-label': 'Product' }, line.name),
    h('td', { 'data-label': 'Price', class: 'num' }, price(line.price, line.currency)),
    h('td', { 'data-label': 'Quantity', class: 'num' }, String(line.quantity)),
    h('td', { 'data-label': 'Total', class: 'num' }, money(cents(line.price) * line.quantity, line.currency)),
    h('td', {}));
}

/** cartPage lists the cart: /cart */
export function cartPage(ctx) {
  ctx.title('Cart');
  const draw = () => {
    const lines = cart.lines();
    if (!lines.length) return emptyCart(ctx);
    replace(ctx.main,
      h('h1', {}, 'Your cart'),
      linesTable(lines, draw),
      h('p', { class: 'note' }, 'Prices are confirmed when your order reserves the stock.'),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '/checkout', id: 'checkout-link' }, 'Check out')));
  };
  draw();
}

/** checkoutPage places the order: /checkout */
export async function checkoutPage(ctx) {
  ctx.title('Checkout');
  const lines = cart.lines();
  if (!lines.length) return emptyCart(ctx);
  if (!currentUser()) {
    replace(ctx.main,
      h('h1', {}, 'Checkout'),
      h('p', { id: 'checkout-login' }, 'Log in or register to place your order. Your cart stays as it is.'),
      h('p', { class: 'actions' },
        h('a', { class: 'button', href: '/login?next=/checkout' }, 'Log in'),
        h('a', { class: 'button secondary', href: '/register?next=/checkout' }, 'Register')));
    return;
  }

  const select = field({
    id: 'payment-method', name: 'payment_method', label: 'Payment method', kind: 'select',
    value: PAYMENT_METHODS[0].value, options: PAYMENT_METHODS, hint: ' ',
  });
  const help = select.querySelector('.hint');
  help.setAttribute('aria-live', 'polite');
  const control = select.querySelector('select');
  const explain = () => {
    help.textContent = PAYMENT_METHODS.find((m) => m.value === control.value).help;
  };
  control.addEventListener('change', explain);
  explain();

  const shipping = await get('/api/v1/shipping-methods', { signal: ctx.signal });
  const currency = shipping.currency;
  const address = addressFieldset(shipping.countries);
  const delivery = shippingFieldset(shipping.items, cart.subtotal(), currency, address);

  const submit = h('button', { type: 'submit', id: 'place-order' }, 'Place order');
  const form = h('form', { id: 'checkout-form', class: 'checkout', novalidate: true },
    delivery, address,
    h('fieldset', {},
      h('legend', {}, 'Payment'),
      h('p', { class: 'note' }, 'This shop runs in test mode: pick a test card to see what happens to an order.'),
      select,
      h('details', { class: 'cards' },
        h('summary', {}, 'What each test card does'),
        h('dl', {}, PAYMENT_METHODS.map((m) => [h('dt', {}, h('code', {}, m.value), ` — ${m.label}`), h('dd', {}, m.help)])))),
    h('div', { class: 'actions' }, submit),
    actionError('checkout-error'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const restore = busy(submit, 'Placing order…');
    try {
      const order = await post('/api/v1/orders', {
        items: cart.lines().map((l) => ({ product_id: l.product_id, quantity: l.quantity })),
        payment_method: control.value,
        ...chosenShipping(form, shipping.items),
      }, { headers: { 'Idempotency-Key': cart.checkoutKey() } });
      cart.clear();
      navigate(`/orders/${order.id}`);
    } catch (err) {
      restore();
      if (err.name === 'AbortError') return;
      if (err.status === 401) {
        err.problem = { ...err.problem, detail: 'your session has ended: log in again, your cart is kept' };
      }
      showError(form, err);
    }
  });

  replace(ctx.main,
    h('h1', {}, 'Checkout'),
    h('section', { 'aria-labelledby': 'summary-heading' },
      h('h2', { id: 'summary-heading' }, 'Your order'),
      linesTable(lines, null),
      h('p', {}, h('a', { href: '/cart' }, 'Change the cart'))),
    form);
}
