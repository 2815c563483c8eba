// A time shown to people, with its machine-readable value.
import { h } from '../dom.js';
import { when } from '../format.js';

/** timeTag is a <time> element for an ISO time. */
export function timeTag(iso, format = when) {
  return iso ? h('time', { datetime: iso }, format(iso)) : '—';
}
