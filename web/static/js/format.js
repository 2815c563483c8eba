// How values read for people: money from the API's decimal strings, times,
// words and ids. Plain functions from values to strings, no DOM: the
// elements that show them are built with dom.js.

/** cents turns a decimal string ("12.50") into whole cents, without floats. */
export function cents(amount) {
  const [whole, frac = ''] = String(amount).split('.');
  return Number(whole) * 100 + Number((frac + '00').slice(0, 2));
}

/** money formats whole cents as a decimal string with two places. */
export function money(c) {
  const sign = c < 0 ? '-' : '';
  const abs = Math.abs(c);
  const whole = Math.floor(abs / 100).toLocaleString('en-US');
  return `${sign}${whole}.${String(abs % 100).padStart(2, '0')}`;
}

/** price formats a decimal string from the API for people. */
export function price(amount) {
  return amount === null || amount === undefined ? '—' : money(cents(amount));
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
