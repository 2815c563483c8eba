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
