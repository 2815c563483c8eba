// The catalog (browse, search, filter by category, page through) and the
// product page.
import { get, query } from '../api.js';
import * as cart from '../cart.js';
import { h, replace, toast } from '../dom.js';
import { price } from '../format.js';
import { field } from '../forms.js';
import { navigate } from '../router.js';
import { isStaff } from '../session.js';
import { categories, categoryOptions } from '../widgets/categories.js';
import { productGallery, productImage } from '../widgets/images.js';

const PAGE_SIZE = 12;

// EAGER_CARDS is how many cards' pictures load at once: those of the first
// rows, in view as the page opens; the rest wait until scrolled near.
const EAGER_CARDS = 4;

// The orders the catalog offers, as the API names them; relevance only
// for a search.
const SORTS = [
  { value: 'relevance', label: 'Best match', search: true },
  { value: 'name', label: 'Name' },
  { value: 'price', label: 'Price, low to high' },
  { value: '-price', label: 'Price, high to low' },
  { value: 'newest', label: 'Newest' },
];

/** countText says how many products a listing matches, in words. */
export function countText(count, capped) {
  if (capped) return `More than ${count.toLocaleString('en-US')} products`;
  return `${count.toLocaleString('en-US')} product${count === 1 ? '' : 's'}`;
}

/** stockText says how many are left, in words. */
export function stockText(n) {
  if (n <= 0) return 'Out of stock';
  if (n <= 5) return `Only ${n} left`;
  return `${n} in stock`;
}

function stock(n, id) {
  return h('p', { class: `stock${n <= 0 ? ' out' : n <= 5 ? ' low' : ''}`, id, 'data-available': String(n) }, stockText(n));
}

// The API pages with opaque cursors; to go back a page the catalog remembers,
// per tab, which cursor led to which.
const TRAIL = 'modshop.catalog-pages';

function trail() {
  try {
    return JSON.parse(sessionStorage.getItem(TRAIL)) || {};
  } catch {
    return {};
  }
}

function remember(next, prev, number) {
  const t = trail();
  t[next] = { prev, number };
  sessionStorage.setItem(TRAIL, JSON.stringify(t));
}

function catalogURL(q, category, cursor, sort) {
  return `/${query({ q, category, sort, cursor })}`;
}

function addButton(p) {
  const button = h('button', { type: 'button', class: 'add', 'aria-label': `Add ${p.name} to cart` }, 'Add to cart');
  const refreshState = () => {
    const full = cart.quantityOf(p.id) >= Math.min(p.available, cart.MAX_QUANTITY);
    button.disabled = p.available <= 0 || full;
    if (p.available <= 0) button.textContent = 'Out of stock';
    else if (full) button.textContent = 'All in your cart';
  };
  button.addEventListener('click', () => {
    try {
      const n = cart.add(p, 1);
      toast(`Added ${p.name} to your cart (${n} in cart).`);
      button.textContent = 'Added ✓';
      setTimeout(() => {
        button.textContent = 'Add to cart';
        refreshState();
      }, 1200);
    } catch (err) {
      toast(err.message);
    }
    refreshState();
  });
  refreshState();
  return button;
}

function productCard(p, i) {
  return h('li', { class: 'card product-card', 'data-product-id': p.id },
    productImage(p, { lazy: i >= EAGER_CARDS, priority: i === 0 }),
    h('h2', { class: 'card-title' }, h('a', { href: `/products/${p.id}` }, p.name)),
    h('p', { class: 'price' }, price(p.price, p.currency)),
    stock(p.available),
    addButton(p));
}

/** catalogPage is the storefront: /?q=&category=&sort=&cursor= */
export async function catalogPage(ctx) {
  const q = (ctx.query.get('q') || '').trim();
  const category = ctx.query.get('category') || '';
  const cursor = ctx.query.get('cursor') || '';
  const sorts = SORTS.filter((o) => q || !o.search);
  const asked = ctx.query.get('sort') || '';
  const sort = sorts.some((o) => o.value === asked) ? asked : '';
  ctx.title(q ? `“${q}”` : 'Shop');

  const cats = await categories(ctx.signal);
  const form = h('form', { class: 'search', role: 'search', id: 'search-form' },
    field({ id: 'search-q', name: 'q', label: 'Search', type: 'search', value: q, attrs: { placeholder: 'coffee, “french press”, -decaf', maxlength: 200, autocomplete: 'off' } }),
    field({ id: 'search-category', name: 'category', label: 'Category', kind: 'select', value: category, options: [{ value: '', label: 'All categories' }, ...categoryOptions(cats)] }),
    field({ id: 'search-sort', name: 'sort', label: 'Sort by', kind: 'select', value: sort || sorts[0].value, options: sorts }),
    h('button', { type: 'submit', id: 'search-submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const newQ = form.elements.q.value.trim();
    // An order the shopper chose stays; this page's default order gives way
    // to the next listing's (a new search is by relevance), and relevance
    // means nothing when browsing.
    const wanted = form.elements.sort.value;
    const keep = wanted !== (q ? 'relevance' : 'name') && (newQ || wanted !== 'relevance');
    navigate(catalogURL(newQ, form.elements.category.value, '', keep ? wanted : ''));
  });
  form.elements.category.addEventListener('change', () => form.requestSubmit());
  form.elements.sort.addEventListener('change', () => form.requestSubmit());

  const status = h('p', { id: 'results-status', class: 'results-status', role: 'status' });
  const results = h('div', { id: 'results', 'aria-busy': 'true' }, h('p', { class: 'loading' }, 'Loading products…'));
  const heading = q ? `Results for “${q}”` : category ? (cats.find((c) => c.slug === category)?.name ?? 'Shop') : 'Shop';
  replace(ctx.main, h('h1', {}, heading), form, status, results);

  let page;
  try {
    page = await get(`/api/v1/products${query({ q, category, sort, cursor, limit: PAGE_SIZE })}`, { signal: ctx.signal });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    results.removeAttribute('aria-busy');
    replace(results, h('div', { class: 'problem', role: 'alert' }, h('p', {}, err.summary),
      h('p', {}, h('a', { href: catalogURL(q, category, '', sort) }, 'Start from the first page'))));
    return;
  }
  const here = cursor ? trail()[cursor] : { prev: null, number: 1 };
  const number = here ? here.number : null;
  if (page.next_cursor) remember(page.next_cursor, cursor, number ? number + 1 : null);

  const n = page.items.length;
  status.textContent = n === 0
    ? (q ? `No products match “${q}”.` : 'No products here yet.')
    : `${countText(page.count, page.count_capped)}${number ? `, page ${number}` : ''}${page.next_cursor ? ', more on the next page' : ''}.`;

  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' },
    cursor && here ? h('a', { href: catalogURL(q, category, here.prev, sort), id: 'prev-page', rel: 'prev' }, '← Previous page')
      : cursor ? h('a', { href: catalogURL(q, category, '', sort), id: 'first-page' }, '← First page') : null,
    page.next_cursor ? h('a', { href: catalogURL(q, category, page.next_cursor, sort), id: 'next-page', rel: 'next' }, 'Next page →') : null);
  results.removeAttribute('aria-busy');
  replace(results, n ? h('ul', { class: 'grid', id: 'products' }, page.items.map((p, i) => productCard(p, i))) : null, pager);
}

/** productPage shows one product: /products/:id */
export async function productPage(ctx) {
  const p = await get(`/api/v1/products/${encodeURIComponent(ctx.params.id)}`, { signal: ctx.signal });
  ctx.title(p.name);
  const max = Math.max(1, Math.min(p.available, cart.MAX_QUANTITY));
  const inCart = h('p', { id: 'in-cart', class: 'in-cart', role: 'status' });
  const showInCart = () => {
    const n = cart.quantityOf(p.id);
    replace(inCart, n ? [`In your cart: ${n}. `, h('a', { href: '/cart' }, 'Go to cart')] : '');
  };
  const form = h('form', { id: 'add-form', class: 'add-form' },
    field({ id: 'add-quantity', name: 'quantity', label: 'Quantity', type: 'number', value: 1, attrs: { min: 1, max, step: 1, inputmode: 'numeric', required: true } }),
    h('button', { type: 'submit', id: 'add-to-cart', disabled: p.available <= 0 }, p.available <= 0 ? 'Out of stock' : 'Add to cart'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const want = Number(form.elements.quantity.value);
    const room = Math.min(p.available, cart.MAX_QUANTITY) - cart.quantityOf(p.id);
    const err = document.getElementById('add-quantity-error');
    if (!Number.isInteger(want) || want < 1 || want > room) {
      err.textContent = room > 0 ? `Quantity must be a whole number from 1 to ${room}.` : 'You have every one we have in your cart.';
      err.hidden = false;
      form.elements.quantity.setAttribute('aria-invalid', 'true');
      form.elements.quantity.focus();
      return;
    }
    err.hidden = true;
    form.elements.quantity.removeAttribute('aria-invalid');
    try {
      cart.add(p, want);
      toast(`Added ${want} × ${p.name} to your cart.`);
    } catch (ex) {
      toast(ex.message);
    }
    showInCart();
  });
  showInCart();

  replace(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: '/' }, '← Shop')),
    h('article', { class: 'product', 'data-product-id': p.id },
      productGallery(p),
      h('h1', { id: 'product-name' }, p.name),
      h('p', { class: 'price big', id: 'product-price' }, price(p.price, p.currency)),
      stock(p.available, 'product-available'),
      p.categories.length ? h('ul', { class: 'tags', 'aria-label': 'Categories' },
        p.categories.map((c) => h('li', {}, h('a', { href: `/?category=${encodeURIComponent(c.slug)}` }, c.name)))) : null,
      h('div', { class: 'description' }, p.description.split(/\n+/).filter(Boolean).map((para) => h('p', {}, para))),
      h('p', { class: 'sku' }, `SKU ${p.sku}`),
      form,
      inCart,
      isStaff() ? h('p', {}, h('a', { href: `/staff/products/${p.id}` }, 'Edit in the staff pages')) : null));
}
