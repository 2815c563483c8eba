// The storefront and staff pages of modshop: plain JavaScript modules served
// by the binary, no build step. This file draws the header and maps each URL
// to its page.
import * as cart from './cart.js';
import { h, replace, toast } from './dom.js';
import { navigate, onRendered, render, route, start } from './router.js';
import { currentUser, isStaff, logOut, onSessionChange, refresh } from './session.js';
import { catalogPage, productPage } from './pages/shop.js';
import { cartPage, checkoutPage } from './pages/cart.js';
import { accountPage, loginPage, registerPage } from './pages/account.js';
import { orderPage, ordersPage } from './pages/orders.js';
import { staffHome } from './pages/staff.js';
import { staffProductPage, staffProductsPage } from './pages/staff-products.js';
import { staffOrdersPage } from './pages/staff-orders.js';
import { staffBusPage } from './pages/staff-bus.js';
import { staffUsersPage } from './pages/staff-users.js';

route('/', catalogPage);
route('/products/:id', productPage);
route('/cart', cartPage);
route('/checkout', checkoutPage);
route('/login', loginPage);
route('/register', registerPage);
route('/account', accountPage);
route('/orders', ordersPage);
route('/orders/:id', orderPage);
route('/staff', staffHome);
route('/staff/products', staffProductsPage);
route('/staff/products/new', staffProductPage);
route('/staff/products/:id', staffProductPage);
route('/staff/orders', staffOrdersPage);
route('/staff/bus', staffBusPage);
route('/staff/users', staffUsersPage);

function navLink(href, label, attrs = {}) {
  return h('a', { href, ...attrs }, label);
}

function drawNav() {
  const nav = document.getElementById('site-nav');
  const user = currentUser();
  const n = cart.count();
  const items = [
    navLink('/', 'Shop'),
    navLink('/cart', ['Cart ', h('span', { class: 'count', id: 'cart-count' }, String(n))],
      { 'aria-label': `Cart, ${n} ${n === 1 ? 'item' : 'items'}` }),
  ];
  if (user) items.push(navLink('/orders', 'My orders'));
  if (isStaff()) items.push(navLink('/staff', 'Staff'));
  if (user) {
    items.push(
      navLink('/account', user.username, { class: 'who', id: 'signed-in-as', title: 'Your account' }),
      h('button', { type: 'button', class: 'link', id: 'logout', onclick: onLogOut }, 'Log out'));
  } else {
    items.push(navLink('/login', 'Log in'), navLink('/register', 'Register'));
  }
  replace(nav, h('ul', {}, items.map((it) => h('li', {}, it))));
  markActive();
}

function markActive() {
  const path = location.pathname;
  for (const a of document.querySelectorAll('#site-nav a')) {
    const href = a.getAttribute('href');
    const here = href === '/' ? path === '/' || path.startsWith('/products/') : path === href || path.startsWith(`${href}/`);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

async function onLogOut(e) {
  const button = e.currentTarget;
  button.disabled = true;
  try {
    await logOut();
    toast('You are logged out.');
    navigate('/');
  } catch (err) {
    button.disabled = false;
    toast(`Could not log out: ${err.summary || err.message}`);
  }
}

onSessionChange(drawNav);
window.addEventListener('modshop:session-ended', () => {
  toast('Your session has ended. Please log in again.');
  render();
});
cart.onCartChange(drawNav);
onRendered(markActive);
drawNav();
start();
// Check the remembered user against the server (roles may have changed,
// the session may have ended); the header follows.
refresh().catch(() => {});
