// The checkout's delivery part: the shipping methods (GET
// /api/v1/shipping-methods) as radio buttons with their prices, the total
// with shipping, and the address form a method that delivers needs. Field
// names are the API's ("shipping_address.city"), so the field errors of a
// 422 land on their fields (forms.js, showError).
import { h, replace } from '../dom.js';
import { cents, money, price } from '../format.js';
import { field } from '../forms.js';
import { countryName } from './fulfilment.js';

/** guessCountry is the reader's region, when the shop ships there. */
function guessCountry(countries) {
  try {
    const region = new Intl.Locale(navigator.language).maximize().region;
    return countries.includes(region) ? region : '';
  } catch {
    return '';
  }
}

/** addressFieldset is the shipping address form, with the autocomplete
 * tokens browsers fill a shipping address from. */
export function addressFieldset(countries) {
  const options = countries.map((c) => ({ value: c, label: countryName(c) }))
    .sort((a, b) => a.label.localeCompare(b.label));
  const part = (name, label, autocomplete, attrs = {}) => field({
    id: `ship-${name.replaceAll('_', '-')}`, name: `shipping_address.${name}`, label,
    attrs: { autocomplete: `shipping ${autocomplete}`, ...attrs },
  });
  return h('fieldset', { id: 'address-fields', class: 'address' },
    h('legend', {}, 'Shipping address'),
    part('name', 'Full name', 'name', { required: true, maxlength: 100 }),
    part('line1', 'Street and number', 'address-line1', { required: true, maxlength: 100 }),
    part('line2', 'Address line 2 (optional)', 'address-line2', { maxlength: 100 }),
    h('div', { class: 'field-row' },
      part('postal_code', 'Postal code', 'postal-code', { maxlength: 16 }),
      part('city', 'City', 'address-level2', { required: true, maxlength: 60 })),
    field({
      id: 'ship-country', name: 'shipping_address.country', label: 'Country', kind: 'select',
      value: guessCountry(countries), options: [{ value: '', label: 'Choose a country' }, ...options],
      attrs: { autocomplete: 'shipping country', required: true },
    }));
}

/** shippingFieldset lists the methods to choose from, pickup first and
 * chosen, and keeps the total (subtotal in cents, plus the method's price)
 * and the address form's visibility in step with the choice. */
export function shippingFieldset(methods, subtotal, currency, address) {
  const total = h('p', { class: 'checkout-total', id: 'checkout-total', 'aria-live': 'polite' });
  const radios = methods.map((m, i) => {
    const id = i === 0 ? 'shipping-method' : `shipping-${m.code}`;
    return h('div', { class: 'radio' },
      h('input', { type: 'radio', id, name: 'shipping_method', value: m.code, checked: i === 0, 'data-label': 'Shipping method', 'aria-describedby': 'shipping-method-error' }),
      h('label', { for: id }, m.label, ' ', h('span', { class: 'muted' }, Number(m.price) ? price(m.price, currency) : 'free')));
  });
  const box = h('fieldset', { id: 'shipping-fields', class: 'shipping' },
    h('legend', {}, 'Delivery'),
    radios,
    h('p', { class: 'field-error', id: 'shipping-method-error', hidden: true }),
    total);
  const update = () => {
    const m = methods.find((x) => x.code === box.querySelector('input[name="shipping_method"]:checked')?.value) ?? methods[0];
    address.hidden = !m.needs_address;
    address.disabled = !m.needs_address;
    replace(total, `Items ${money(subtotal, currency)} + shipping ${price(m.price, currency)} = `,
      h('strong', {}, money(subtotal + cents(m.price), currency)),
      h('span', { class: 'muted' }, ' (prices are confirmed when your order reserves the stock)'));
  };
  box.addEventListener('change', update);
  update();
  return box;
}

/** chosenShipping is the shipping part of the place request: the method
 * and, for a method that delivers, the address. */
export function chosenShipping(form, methods) {
  const code = form.querySelector('input[name="shipping_method"]:checked')?.value ?? methods[0].code;
  const m = methods.find((x) => x.code === code);
  if (!m?.needs_address) return { shipping_method: code };
  const part = (name) => form.elements[`shipping_address.${name}`].value;
  return {
    shipping_method: code,
    shipping_address: {
      name: part('name'), line1: part('line1'), line2: part('line2'),
      postal_code: part('postal_code'), city: part('city'), country: part('country'),
    },
  };
}
