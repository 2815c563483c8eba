// Form controls with labels, hints and error slots, and the one place that
// shows a problem+json answer: each invalid field's message next to that
// field, and what concerns no field next to the button that was pressed.
import { h, replace } from './dom.js';

/** field builds a labelled control. The control gets id, its hint
 * id-hint and its error slot id-error (both in aria-describedby).
 * kind is 'input' (default), 'textarea' or 'select' (with options
 * [{value, label}]). */
export function field({ id, name, label, kind = 'input', type = 'text', value, hint, options, attrs = {} }) {
  const describedBy = [hint ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' ');
  const common = { id, name, 'aria-describedby': describedBy, 'data-label': label, ...attrs };
  let control;
  if (kind === 'textarea') {
    control = h('textarea', common);
    control.value = value ?? '';
  } else if (kind === 'select') {
    control = h('select', common, options.map((o) => h('option', { value: o.value }, o.label)));
    if (value !== undefined) control.value = value;
  } else {
    control = h('input', { type, ...common });
    if (value !== undefined && value !== null) control.value = value;
  }
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null,
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
}

/** checkbox builds a labelled checkbox. */
export function checkbox({ id, name, label, checked, value }) {
  return h('div', { class: 'check' },
    h('input', { type: 'checkbox', id, name, value: value ?? 'on', checked, 'aria-describedby': `${id}-error` }),
    h('label', { for: id }, label),
    h('p', { class: 'field-error', id: `${id}-error`, hidden: true }));
}

/** actionError is the slot for what went wrong with an action, placed next
 * to its button. */
export function actionError(id) {
  return h('div', { class: 'action-error', id, role: 'alert', hidden: true });
}

/** clearErrors removes every error shown in container. */
export function clearErrors(container) {
  for (const el of container.querySelectorAll('.field-error, .action-error')) {
    el.hidden = true;
    el.replaceChildren();
  }
  for (const el of container.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

function controlFor(container, name) {
  // "items.quantity" concerns the items; "Idempotency-Key" no field at all.
  for (const candidate of [name, name.split('.')[0]]) {
    const el = container.querySelector(`[name="${CSS.escape(candidate)}"]`);
    if (el) return el;
  }
  return null;
}

/** showError shows err in container: each field error next to its field
 * (focusing the first), the rest in the action error slot. err is an
 * ApiError or any Error. */
export function showError(container, err, slot = container.querySelector('.action-error')) {
  clearErrors(container);
  const loose = [];
  let first = null;
  for (const fe of err.fieldErrors || []) {
    const control = controlFor(container, fe.field);
    const out = control && document.getElementById(`${control.id}-error`);
    if (!out) {
      loose.push(fe);
      continue;
    }
    const label = control.dataset.label || fe.field;
    const text = out.hidden ? '' : `${out.textContent} `;
    out.textContent = `${text}${label} ${fe.message}.`;
    out.hidden = false;
    control.setAttribute('aria-invalid', 'true');
    first ??= control;
  }
  const placed = (err.fieldErrors || []).length - loose.length;
  if (slot) {
    const summary = err.summary || err.message;
    replace(slot,
      h('p', {}, placed > 0 && loose.length === 0 ? 'Please correct the marked fields.' : summary),
      loose.length ? h('ul', {}, loose.map((fe) => h('li', {}, `${fe.field} ${fe.message}`))) : null,
      err.status >= 500 && err.problem.request_id ? h('p', { class: 'request-id' }, `Request id: ${err.problem.request_id}`) : null);
    slot.hidden = false;
  }
  if (first) first.focus();
  else if (slot) slot.focus?.();
}

/** values reads a form's named controls into an object of strings. */
export function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form)) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}
