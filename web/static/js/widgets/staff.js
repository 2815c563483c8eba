// What every staff page shares: the check that the visitor is staff, and the
// staff navigation.
import { h, replace } from '../dom.js';
import { currentUser, isStaff } from '../session.js';

/** staffOnly draws the answer for a visitor who is not staff and returns
 * false; for staff it returns true. The server refuses staff requests from
 * customers anyway (403); this spares them a page of errors. */
export function staffOnly(ctx) {
  const user = currentUser();
  if (isStaff()) return true;
  ctx.title('Staff only');
  if (!user) {
    replace(ctx.main,
      h('h1', {}, 'Staff only'),
      h('p', { id: 'staff-only' }, 'The staff pages are for shop staff. Log in with a staff account to open them.'),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: `/login?next=${encodeURIComponent(ctx.url.pathname)}` }, 'Log in')));
  } else {
    replace(ctx.main,
      h('h1', {}, 'Staff only'),
      h('div', { class: 'problem', role: 'alert', id: 'staff-only' },
        h('p', {}, `Sorry, ${user.username}: you may not open the staff pages. They are for shop staff, and your account is a customer account.`),
        h('p', {}, 'If you work here, ask an administrator to give your account the staff role.')),
      h('p', {}, h('a', { href: '/' }, 'Back to the shop')));
  }
  return false;
}

/** staffForbidden turns a 403 from a staff endpoint (the role was taken
 * away since the page loaded) into the same answer. */
export function staffForbidden(ctx, err) {
  if (err.status !== 403) throw err;
  ctx.title('Staff only');
  replace(ctx.main,
    h('h1', {}, 'Staff only'),
    h('div', { class: 'problem', role: 'alert', id: 'staff-only' },
      h('p', {}, 'You may not open the staff pages: the server refused, saying ', h('q', {}, err.summary))));
}

/** staffNav links the staff pages, marking the current one. */
export function staffNav(current) {
  const links = [['/staff/orders', 'Orders'], ['/staff/products', 'Products'], ['/staff/bus', 'Event bus'], ['/staff/users', 'Users']];
  return h('nav', { class: 'staff-nav', 'aria-label': 'Staff' },
    h('ul', {}, links.map(([href, label]) => h('li', {},
      h('a', { href, 'aria-current': href === current ? 'page' : null }, label)))));
}
