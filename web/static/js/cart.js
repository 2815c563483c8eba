// The cart lives in the browser (localStorage), so it needs no account and
// survives a reload. It keeps the name, price and currency seen when the
// product was added, for display only: the order takes the authoritative names and prices
// when it reserves the stock. It also keeps the idempotency key of the next
// checkout, so that a retried or double-clicked "Place order" places one order.
import { newKey } from './api.js';
import { cents } from './format.js';

const KEY = 'modshop.cart';
export const MAX_QUANTITY = 100; // the API's bound per product
export const MAX_LINES = 50;
const listeners = new Set();

function load() {
  try {
    const c = JSON.parse(localStorage.getItem(KEY));
    if (c && Array.isArray(c.lines)) return c;
  } catch {
    // a broken cart is an empty cart
  }
  return { lines: [], key: null };
}

function save(cart, keepKey = false) {
  if (!keepKey) cart.key = null; // another cart is another order
  localStorage.setItem(KEY, JSON.stringify(cart));
  for (const fn of listeners) fn(cart);
}

/** lines returns the cart's lines: {product_id, name, price, currency, quantity}. */
export function lines() {
  return load().lines;
}

/** count is the number of items in the cart. */
export function count() {
  return lines().reduce((n, l) => n + l.quantity, 0);
}

/** quantityOf is how many of a product the cart holds. */
export function quantityOf(productID) {
  const line = lines().find((l) => l.product_id === productID);
  return line ? line.quantity : 0;
}

/** subtotal is the sum of the lines at the prices seen, in cents of currency(). */
export function subtotal() {
  return lines().reduce((sum, l) => sum + cents(l.price) * l.quantity, 0);
}

/** currency is the currency of the cart's prices: the shop has one, so the
 * first line's (undefined for an empty cart, or one kept from before prices
 * carried a currency). */
export function currency() {
  return lines().find((l) => l.currency)?.currency;
}

/** add puts quantity of product into the cart and returns the new quantity.
 * It throws when the cart cannot take more. */
export function add(product, quantity = 1) {
  const cart = load();
  let line = cart.lines.find((l) => l.product_id === product.id);
  if (!line) {
    if (cart.lines.length >= MAX_LINES) throw new Error(`A cart holds at most ${MAX_LINES} different products.`);
    line = { product_id: product.id, name: product.name, price: product.price, currency: product.currency, quantity: 0 };
    cart.lines.push(line);
  }
  line.name = product.name;
  line.price = product.price;
  line.currency = product.currency;
  line.quantity = Math.min(MAX_QUANTITY, line.quantity + quantity);
  save(cart);
  return line.quantity;
}

/** setQuantity changes a line; 0 removes it. */
export function setQuantity(productID, quantity) {
  const cart = load();
  const q = Math.max(0, Math.min(MAX_QUANTITY, Math.floor(quantity) || 0));
  cart.lines = cart.lines
    .map((l) => (l.product_id === productID ? { ...l, quantity: q } : l))
    .filter((l) => l.quantity > 0);
  save(cart);
}

/** remove takes a product out of the cart. */
export function remove(productID) {
  setQuantity(productID, 0);
}

/** clear empties the cart (after an order was placed). */
export function clear() {
  save({ lines: [], key: null });
}

/** checkoutKey is the idempotency key for ordering this cart as it is now. */
export function checkoutKey() {
  const cart = load();
  if (!cart.key) {
    cart.key = newKey();
    save(cart, true);
  }
  return cart.key;
}

/** onCartChange calls fn whenever the cart changes. */
export function onCartChange(fn) {
  listeners.add(fn);
  window.addEventListener('storage', (e) => {
    if (e.key === KEY) fn(load());
  });
}
