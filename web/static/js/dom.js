// Small helpers to build the page. Elements are made with
// document.createElement and text nodes, never from HTML strings, so text
// that comes from the API is never parsed as markup. Nothing here sets a
// style attribute or an inline handler: the Content-Security-Policy allows
// neither. How values read for people (money, times, words) is format.js's
// job; elements shared by pages are in widgets/.

/** h builds an element: h('a', {href: '/'}, 'Home'). Attributes whose value
 * is false, null or undefined are left out; true sets an empty attribute;
 * functions under on* keys become event listeners. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  append(el, ...children); // first, so that a <select> can take its value
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'value' && 'value' in el && tag !== 'option') el.value = value;
    else if (key === 'checked' || key === 'selected' || key === 'disabled') el[key] = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  return el;
}

/** append adds children (elements, strings, numbers or nested arrays). */
export function append(el, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** replace empties el and fills it with children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

/** loading shows a busy state in container. */
export function loading(container, text = 'Loading…') {
  container.setAttribute('aria-busy', 'true');
  replace(container, h('p', { class: 'loading' }, text));
}

/** done clears the busy state of container. */
export function done(container) {
  container.removeAttribute('aria-busy');
}

/** busy marks a button as working: disabled, with another label, until the
 * returned function is called. */
export function busy(button, label) {
  const before = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  return () => {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = before;
  };
}

let toastTimer = 0;

/** toast says something briefly in the polite live region. */
export function toast(text) {
  const el = document.getElementById('toast');
  if (!el) return;
  el.textContent = text;
  el.classList.add('shown');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    el.classList.remove('shown');
    el.textContent = '';
  }, 4000);
}
