// The staff home page: links to the staff pages.
import { h, replace } from '../dom.js';
import { staffNav, staffOnly } from '../widgets/staff.js';

/** staffHome: /staff */
export function staffHome(ctx) {
  if (!staffOnly(ctx)) return;
  ctx.title('Staff');
  replace(ctx.main,
    staffNav('/staff'),
    h('h1', {}, 'Staff'),
    h('ul', { class: 'grid staff-home' },
      h('li', { class: 'card' }, h('h2', { class: 'card-title' }, h('a', { href: '/staff/orders' }, 'Orders')),
        h('p', {}, 'Every order by status, with the timeline of its saga.')),
      h('li', { class: 'card' }, h('h2', { class: 'card-title' }, h('a', { href: '/staff/products' }, 'Products')),
        h('p', {}, 'Create and edit products; restock or correct stock.')),
      h('li', { class: 'card' }, h('h2', { class: 'card-title' }, h('a', { href: '/staff/bus' }, 'Event bus')),
        h('p', {}, 'How far each consumer lags; dead letters to inspect, replay or discard.')),
      h('li', { class: 'card' }, h('h2', { class: 'card-title' }, h('a', { href: '/staff/users' }, 'Users')),
        h('p', {}, 'Find accounts, change their roles, suspend or reinstate them.'))));
}
