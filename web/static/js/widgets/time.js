// A time shown to people, with its machine-readable value.
import { h } from '../dom.js';
import { when } from '../format.js';

/** timeTag is a <time> element for an ISO time, local and in words; a
 * shorter format (a time of day) has the full date and time as its title. */
export function timeTag(iso, format = when) {
  return iso ? h('time', { datetime: iso, title: format === when ? null : when(iso) }, format(iso)) : '—';
}
