// How values read for people: money from the API's decimal strings, times,
// words and ids. Plain functions from values to strings, no DOM: the
// elements that show them are built with dom.js.

/** cents turns a decimal string ("12.50") into whole cents, without floats. */
export function cents(amount) {
  const [whole, frac = ''] = String(amount).split('.');
  return Number(whole) * 100 + Number((frac + '00').slice(0, 2));
}

const moneyFormats = new Map();

/** moneyFormat is the browser's format of amounts in currency (an ISO 4217
 * code): "€12.50" or "12,50 €" by the reader's locale. Without a currency it
 * writes the number alone, with two places (a cart kept from before prices
 * carried one). */
function moneyFormat(currency) {
  const key = currency || '';
  if (!moneyFormats.has(key)) {
    let f;
    try {
      f = key ? new Intl.NumberFormat(undefined, { style: 'currency', currency: key }) : null;
    } catch {
      f = null; // a code this browser does not know
    }
    moneyFormats.set(key, f || new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  }
  return moneyFormats.get(key);
}

/** money formats whole cents of currency for people. The cents go to Intl as
 * a decimal string, so no float ever holds the amount. */
export function money(c, currency) {
  const sign = c < 0 ? '-' : '';
  const abs = Math.abs(c);
  return moneyFormat(currency).format(`${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`);
}

/** price formats a decimal string from the API, in currency, for people. */
export function price(amount, currency) {
  return amount === null || amount === undefined ? '—' : money(cents(amount), currency);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** when formats an ISO time for people, or a dash. */
export function when(iso) {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

/** clock formats an ISO time as a time of day with seconds. */
export function clock(iso) {
  return timeOnly.format(iso ? new Date(iso) : new Date());
}

/** humanize turns "payment_succeeded" into "Payment succeeded". */
export function humanize(word) {
  const s = String(word || '').replaceAll('_', ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** shortID is the first block of a UUID, for people to tell orders apart. */
export function shortID(id) {
  return String(id).split('-')[0];
}

/** PAYMENT_METHOD_LABELS name the test provider's methods as a shopper reads them. */
export const PAYMENT_METHOD_LABELS = {
  pm_card_visa: 'Test Visa',
  pm_card_chargeDeclined: 'Test card that declines',
  pm_card_delayed: 'Test Visa, approved after a delay',
};

/** paymentMethod names a payment method id for people: the label of a test
 * method, else the id's words ("pm_card_mastercard" reads "Card: mastercard"). */
export function paymentMethod(id) {
  if (!id) return '—';
  if (PAYMENT_METHOD_LABELS[id]) return PAYMENT_METHOD_LABELS[id];
  const words = String(id).replace(/^pm_/, '').replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase().split('_').filter(Boolean);
  if (words[0] === 'card' && words.length > 1) return `Card: ${words.slice(1).join(' ')}`;
  return humanize(words.join(' ')) || String(id);
}

const STEP_LABELS = {
  placed: 'Order placed',
  stock_reserved: 'Stock reserved',
  stock_rejected: 'Not enough stock',
  total_too_large: 'Total too large',
  payment_requested: 'Payment requested',
  payment_succeeded: 'Payment received',
  payment_failed: 'Payment failed',
  payment_refunded: 'Refunded',
  refund_requested: 'Refund requested',
  refund_failed: 'Refund refused',
  confirmed: 'Confirmed',
  cancelled_by_customer: 'Cancelled by the customer',
  stock_timeout: 'No stock answer in time',
  payment_timeout: 'No payment in time',
  deadline_passed: 'Past its deadline',
};

/** stepName names a timeline step for people; a step without a label of
 * its own reads as its words. */
export function stepName(step) {
  return STEP_LABELS[step] ?? humanize(step);
}

// One pass over a detail, so that nothing is rewritten twice: ids, times,
// payment methods, amounts, and counted nouns ("2 line(s)").
const detailPattern = new RegExp([
  /(?<id>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)/.source,
  /(?<iso>\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)/.source,
  /(?<method>\bpm_[A-Za-z0-9_]+\b)/.source,
  /(?<amount>\b\d+\.\d{2}\b)/.source,
  /(?<count>\b\d+) (?<noun>[a-z]+)\(s\)/.source,
].join('|'), 'gi');

/** readable rewrites a detail the server wrote for an order in the words
 * people read: product ids become the names the order has, times local
 * ones, payment method ids their labels, amounts money in the order's
 * currency. */
export function readable(text, order) {
  const names = new Map((order?.items ?? []).map((it) => [it.product_id.toLowerCase(), it.name]));
  return String(text ?? '').replace(detailPattern, (m, ...args) => {
    const g = args.at(-1);
    if (g.id) return names.get(g.id.toLowerCase()) ?? `product ${shortID(g.id)}`;
    if (g.iso) return Number.isNaN(Date.parse(g.iso)) ? m : when(g.iso);
    if (g.method) return paymentMethod(g.method);
    if (g.amount) return price(g.amount, order?.currency);
    return `${g.count} ${g.noun}${g.count === '1' ? '' : 's'}`;
  });
}
