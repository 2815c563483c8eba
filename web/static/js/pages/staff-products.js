// Staff: the product list with quick restock, and the create/edit page with
// its stock form.
import { get, patch, post, query } from '../api.js';
import { busy, h, replace, toast } from '../dom.js';
import { price } from '../format.js';
import { actionError, checkbox, clearErrors, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { categories, categoryOptions } from '../widgets/categories.js';
import { staffForbidden, staffNav, staffOnly } from '../widgets/staff.js';
import { imagesSection } from '../widgets/product-images.js';

function restockForm(p, onChanged) {
  const id = `restock-${p.sku}`;
  const form = h('form', { class: 'inline-form restock', 'data-sku': p.sku, novalidate: true },
    h('label', { for: id, class: 'visually-hidden' }, `Restock ${p.name} by`),
    h('input', { type: 'number', id, name: 'delta', min: 1, max: 1000000, step: 1, inputmode: 'numeric', placeholder: '+ units', 'aria-describedby': `${id}-error`, 'data-label': 'Restock' }),
    h('button', { type: 'submit', class: 'small' }, 'Restock'),
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }),
    actionError(`${id}-action-error`));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const delta = Number(form.elements.delta.value);
    const button = form.querySelector('button');
    const restore = busy(button, 'Saving…');
    try {
      const updated = await post(`/api/v1/products/${p.id}/stock`, { delta, reason: 'restock from the staff product list' });
      restore();
      form.reset();
      toast(`${updated.name}: ${updated.inventory.on_hand} on hand, ${updated.available} available.`);
      onChanged(updated);
    } catch (err) {
      restore();
      showError(form, err);
    }
  });
  return form;
}

function productRow(p) {
  const row = h('tr', { 'data-product-id': p.id, 'data-sku': p.sku });
  const fill = (q) => {
    replace(row,
      h('td', { 'data-label': 'SKU' }, h('code', {}, q.sku)),
      h('th', { scope: 'row', 'data-label': 'Name' }, h('a', { href: `/staff/products/${q.id}` }, q.name)),
      h('td', { 'data-label': 'Price', class: 'num' }, price(q.price, q.currency)),
      h('td', { 'data-label': 'Available', class: 'num available' }, String(q.available)),
      h('td', { 'data-label': 'On hand', class: 'num on-hand' }, String(q.inventory ? q.inventory.on_hand : '—')),
      h('td', { 'data-label': 'Reserved', class: 'num reserved' }, String(q.inventory ? q.inventory.reserved : '—')),
      h('td', { 'data-label': 'Active' }, q.active ? 'yes' : h('span', { class: 'muted' }, 'no')),
      h('td', { 'data-label': 'Restock' }, restockForm(q, fill)));
  };
  fill(p);
  return row;
}

/** staffProductsPage: /staff/products?q=&cursor= */
export async function staffProductsPage(ctx) {
  if (!staffOnly(ctx)) return;
  ctx.title('Products');
  const q = (ctx.query.get('q') || '').trim();
  const cursor = ctx.query.get('cursor') || '';
  let page;
  try {
    page = await get(`/api/v1/products${query({ q, cursor, limit: 25, include_inactive: 'true' })}`, { signal: ctx.signal });
  } catch (err) {
    return staffForbidden(ctx, err);
  }
  const form = h('form', { class: 'search', role: 'search', id: 'staff-product-search' },
    field({ id: 'staff-q', name: 'q', label: 'Search products', type: 'search', value: q }),
    h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`/staff/products${query({ q: form.elements.q.value.trim() })}`);
  });
  replace(ctx.main,
    staffNav('/staff/products'),
    h('div', { class: 'heading-row' },
      h('h1', {}, 'Products'),
      h('a', { class: 'button', href: '/staff/products/new', id: 'new-product' }, 'New product')),
    form,
    page.items.length
      ? h('table', { class: 'lines stacked', id: 'staff-products' },
        h('caption', { class: 'visually-hidden' }, 'Products with their stock'),
        h('thead', {}, h('tr', {}, ['SKU', 'Name', 'Price', 'Available', 'On hand', 'Reserved', 'Active', 'Restock'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, page.items.map(productRow)))
      : h('p', {}, q ? `No product matches “${q}”.` : 'No products yet.'),
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: `/staff/products${query({ q })}` }, '← First page') : null,
      page.next_cursor ? h('a', { href: `/staff/products${query({ q, cursor: page.next_cursor })}`, id: 'next-page' }, 'Next page →') : null));
}

function categoryField(cats, chosen) {
  const set = new Set(chosen);
  return h('fieldset', { class: 'categories', name: 'categories', id: 'product-categories', 'data-label': 'Categories', 'aria-describedby': 'product-categories-error' },
    h('legend', {}, 'Categories'),
    h('div', { class: 'checks' }, categoryOptions(cats).map((o) => checkbox({
      id: `product-category-${o.value}`, name: 'category', value: o.value, label: o.path, checked: set.has(o.value),
    }))),
    h('p', { class: 'field-error', id: 'product-categories-error', hidden: true }));
}

function chosenCategories(form) {
  return [...form.querySelectorAll('input[name="category"]:checked')].map((c) => c.value);
}

function stockSection(p, onChanged) {
  const figures = h('dl', { class: 'figures', id: 'stock-figures' });
  const show = (q) => replace(figures,
    h('div', {}, h('dt', {}, 'On hand'), h('dd', { id: 'stock-on-hand' }, String(q.inventory.on_hand))),
    h('div', {}, h('dt', {}, 'Reserved'), h('dd', { id: 'stock-reserved' }, String(q.inventory.reserved))),
    h('div', {}, h('dt', {}, 'Available'), h('dd', { id: 'stock-available' }, String(q.available))));
  show(p);
  const submit = h('button', { type: 'submit', id: 'stock-submit' }, 'Change stock');
  const form = h('form', { id: 'stock-form', novalidate: true },
    field({
      id: 'stock-delta', name: 'delta', label: 'Change stock by', type: 'number',
      hint: 'A positive number restocks; a negative one corrects a count (never below what is reserved).',
      attrs: { step: 1, inputmode: 'numeric', required: true },
    }),
    field({ id: 'stock-reason', name: 'reason', label: 'Reason (optional)', attrs: { maxlength: 200 } }),
    h('div', { class: 'actions' }, submit),
    actionError('stock-error'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const raw = form.elements.delta.value.trim();
    const restore = busy(submit, 'Saving…');
    try {
      const updated = await post(`/api/v1/products/${p.id}/stock`, {
        delta: raw === '' ? 0 : Number(raw), reason: form.elements.reason.value.trim(),
      });
      restore();
      clearErrors(form);
      form.reset();
      show(updated);
      onChanged(updated);
      toast(`Stock changed: ${updated.inventory.on_hand} on hand, ${updated.available} available.`);
    } catch (err) {
      restore();
      showError(form, err);
    }
  });
  return h('section', { 'aria-labelledby': 'stock-heading', class: 'panel' },
    h('h2', { id: 'stock-heading' }, 'Stock'), figures, form);
}

/** staffProductPage creates (/staff/products/new) or edits
 * (/staff/products/:id) a product. */
export async function staffProductPage(ctx) {
  if (!staffOnly(ctx)) return;
  const creating = !ctx.params.id;
  let p = null;
  let cats;
  try {
    [cats, p] = await Promise.all([
      categories(ctx.signal),
      creating ? null : get(`/api/v1/products/${encodeURIComponent(ctx.params.id)}`, { signal: ctx.signal }),
    ]);
  } catch (err) {
    return staffForbidden(ctx, err);
  }
  ctx.title(creating ? 'New product' : `Edit ${p.name}`);
  const submit = h('button', { type: 'submit', id: 'product-submit' }, creating ? 'Create product' : 'Save changes');
  const form = h('form', { id: 'product-form', class: 'product-form', novalidate: true },
    creating
      ? field({ id: 'product-sku', name: 'sku', label: 'SKU', hint: 'Capital letters, digits and “-”, such as CT-1001.', attrs: { required: true, maxlength: 32, autocapitalize: 'characters' } })
      : h('p', {}, 'SKU ', h('code', { id: 'product-sku' }, p.sku)),
    field({ id: 'product-name', name: 'name', label: 'Name', value: p?.name, attrs: { required: true, maxlength: 120 } }),
    field({ id: 'product-description', name: 'description', label: 'Description', kind: 'textarea', value: p?.description, attrs: { rows: 5, maxlength: 4000 } }),
    field({ id: 'product-price', name: 'price', label: 'Price', value: p?.price, hint: p?.currency ? `A decimal amount in ${p.currency}, such as 12.50.` : 'A decimal amount such as 12.50.', attrs: { required: true, inputmode: 'decimal', autocomplete: 'off' } }),
    creating ? field({ id: 'product-stock', name: 'stock', label: 'Initial stock', type: 'number', value: 0, attrs: { min: 0, max: 1000000, step: 1, inputmode: 'numeric' } }) : null,
    categoryField(cats, p ? p.categories.map((c) => c.slug) : []),
    checkbox({ id: 'product-active', name: 'active', label: 'Active (shown in the shop)', checked: p ? p.active : true }),
    h('div', { class: 'actions' }, submit),
    actionError('product-error'));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const el = form.elements;
    const body = {
      name: el.name.value.trim(),
      description: el.description.value,
      price: el.price.value.trim(),
      categories: chosenCategories(form),
      active: el.active.checked,
    };
    const restore = busy(submit, creating ? 'Creating…' : 'Saving…');
    try {
      if (creating) {
        const stock = el.stock.value.trim();
        const created = await post('/api/v1/products', {
          sku: el.sku.value.trim(), ...body, stock: stock === '' ? 0 : Number(stock),
        });
        toast(`Created ${created.name}.`);
        navigate(`/staff/products/${created.id}`, { replace: true });
        return;
      }
      p = await patch(`/api/v1/products/${p.id}`, body);
      restore();
      clearErrors(form);
      toast(`Saved ${p.name}.`);
      ctx.title(`Edit ${p.name}`);
      document.getElementById('product-heading').textContent = p.name;
    } catch (err) {
      restore();
      showError(form, err);
    }
  });

  replace(ctx.main,
    staffNav('/staff/products'),
    h('p', { class: 'crumbs' }, h('a', { href: '/staff/products' }, '← Products')),
    h('h1', { id: 'product-heading' }, creating ? 'New product' : p.name),
    creating ? null : h('p', {}, h('a', { href: `/products/${p.id}` }, 'View in the shop')),
    h('div', { class: 'two-columns' },
      h('section', { class: 'panel', 'aria-label': 'Details' }, form),
      creating ? null : stockSection(p, (q) => { p = q; })),
    creating ? null : imagesSection(p));
}
