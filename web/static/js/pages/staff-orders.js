// Staff: every order, filtered by status or to ship (oldest first), each
// with its saga's timeline; an order's page has the ship and deliver
// actions (widgets/fulfilment.js).
import { get, query } from '../api.js';
import { h, replace } from '../dom.js';
import { clock, humanize } from '../format.js';
import { field } from '../forms.js';
import { navigate } from '../router.js';
import { STATUSES, orderCard } from '../widgets/order.js';
import { staffForbidden, staffNav, staffOnly } from '../widgets/staff.js';

/** staffOrdersPage: /staff/orders?status=&fulfilment=&cursor= */
export async function staffOrdersPage(ctx) {
  if (!staffOnly(ctx)) return;
  ctx.title('Orders');
  const status = ctx.query.get('status') || '';
  const cursor = ctx.query.get('cursor') || '';
  const fulfilment = ctx.query.get('fulfilment') === 'to_ship' ? 'to_ship' : '';
  let page;
  try {
    page = await get(`/api/v1/orders${query({ status, fulfilment, cursor, limit: 20 })}`, { signal: ctx.signal });
  } catch (err) {
    return staffForbidden(ctx, err);
  }
  const form = h('form', { class: 'search compact', id: 'order-filter' },
    field({
      id: 'order-status-filter', name: 'status', label: 'Status', kind: 'select', value: status,
      options: [{ value: '', label: 'Every status' }, ...STATUSES.map((s) => ({ value: s, label: humanize(s) }))],
    }),
    field({
      id: 'order-fulfilment-filter', name: 'fulfilment', label: 'Fulfilment', kind: 'select', value: fulfilment,
      options: [{ value: '', label: 'Any' }, { value: 'to_ship', label: 'To ship (oldest first)' }],
    }),
    h('button', { type: 'submit' }, 'Show'),
    h('button', { type: 'button', class: 'secondary', id: 'orders-refresh', onclick: () => navigate(location.pathname + location.search, { replace: true }) }, 'Refresh'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`/staff/orders${query({ status: form.elements.status.value, fulfilment: form.elements.fulfilment.value })}`);
  });
  form.elements.status.addEventListener('change', () => form.requestSubmit());
  form.elements.fulfilment.addEventListener('change', () => form.requestSubmit());

  const n = page.items.length;
  replace(ctx.main,
    staffNav('/staff/orders'),
    h('h1', {}, fulfilment ? 'Orders to ship' : status ? `Orders: ${humanize(status).toLowerCase()}` : 'Orders'),
    form,
    h('p', { role: 'status', id: 'orders-status' },
      n ? `${n} order${n === 1 ? '' : 's'}, ${fulfilment ? 'oldest' : 'newest'} first${page.next_cursor ? `; ${fulfilment ? 'newer' : 'older'} ones on the next page` : ''}. Loaded at ${clock()}.`
        : `No ${status ? `${humanize(status).toLowerCase()} ` : ''}orders${fulfilment ? ' to ship' : ''}.`),
    n ? h('ul', { class: 'list', id: 'staff-orders' }, page.items.map((o) => orderCard(o, true))) : null,
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: `/staff/orders${query({ status, fulfilment })}` }, fulfilment ? '← Oldest' : '← Newest') : null,
      page.next_cursor ? h('a', { href: `/staff/orders${query({ status, fulfilment, cursor: page.next_cursor })}`, id: 'next-page' }, fulfilment ? 'Newer →' : 'Older →') : null));
}
