// Staff: a product's pictures, on its edit page: upload, alt text, which
// one is primary (the one cards show), remove. The server reads what an
// upload is from its bytes; the file picker's accept list only helps.
import { del, patch, request } from '../api.js';
import { busy, h, replace, toast } from '../dom.js';
import { actionError, clearErrors, field, showError } from '../forms.js';

const MAX_BYTES = 1 << 20;

function imageItem(p, im, i, show) {
  const altID = `image-alt-${im.id}`;
  const altForm = h('form', { class: 'image-alt', novalidate: true },
    field({ id: altID, name: 'alt', label: 'Alt text', value: im.alt, hint: 'What the picture shows, for people who cannot see it. Empty: the product’s name.', attrs: { maxlength: 200 } }),
    h('button', { type: 'submit', class: 'small' }, 'Save alt text'),
    actionError(`${altID}-action-error`));
  altForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const restore = busy(altForm.querySelector('button'), 'Saving…');
    try {
      const updated = await patch(im.url, { alt: altForm.elements.alt.value.trim() });
      restore();
      toast('Alt text saved.');
      show(updated);
    } catch (err) {
      restore();
      showError(altForm, err);
    }
  });
  const act = async (button, label, call, done) => {
    const restore = busy(button, label);
    try {
      const updated = await call();
      toast(done);
      show(updated);
    } catch (err) {
      restore();
      toast(err.summary || err.message);
    }
  };
  const primary = i === 0
    ? h('p', { class: 'muted' }, 'Primary picture')
    : h('button', { type: 'button', class: 'small secondary make-primary' }, 'Make primary');
  if (i !== 0) primary.addEventListener('click', () => act(primary, 'Moving…', () => patch(im.url, { position: 0 }), 'Primary picture changed.'));
  const remove = h('button', { type: 'button', class: 'small danger remove-image', 'aria-label': `Remove picture ${i + 1}` }, 'Remove');
  remove.addEventListener('click', () => act(remove, 'Removing…', async () => {
    await del(im.url);
    return { ...p, images: p.images.filter((x) => x.id !== im.id) };
  }, 'Picture removed.'));
  return h('li', { class: 'image-item', 'data-image-id': im.id },
    h('img', { src: im.url, alt: im.alt, width: im.width, height: im.height, loading: 'lazy', decoding: 'async' }),
    h('div', { class: 'image-actions' }, altForm, h('div', { class: 'actions' }, primary, remove)));
}

/** imagesSection lists a product's pictures with their actions and takes
 * new ones. */
export function imagesSection(product) {
  let p = product;
  const list = h('ul', { class: 'image-list', id: 'product-images' });
  const show = (q) => {
    p = q;
    replace(list, p.images.length ? p.images.map((im, i) => imageItem(p, im, i, show)) : h('li', { class: 'muted' }, 'No pictures yet: the shop shows a placeholder.'));
  };
  show(p);
  const submit = h('button', { type: 'submit', id: 'image-upload' }, 'Upload picture');
  const form = h('form', { id: 'image-form', novalidate: true },
    field({ id: 'image-file', name: 'image', label: 'Picture', type: 'file', hint: 'PNG, JPEG or WebP, at most 1 MiB.', attrs: { accept: 'image/png,image/jpeg,image/webp', required: true } }),
    h('div', { class: 'actions' }, submit),
    actionError('image-error'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const file = form.elements.image.files[0];
    const problem = !file ? 'must be chosen first' : file.size > MAX_BYTES ? 'must be at most 1 MiB' : '';
    if (problem) {
      showError(form, { fieldErrors: [{ field: 'image', message: problem }] });
      return;
    }
    const restore = busy(submit, 'Uploading…');
    try {
      const im = await request('POST', `/api/v1/products/${p.id}/images`, { file });
      restore();
      form.reset();
      toast('Picture uploaded.');
      show({ ...p, images: [...p.images, im] });
    } catch (err) {
      restore();
      showError(form, err);
    }
  });
  return h('section', { 'aria-labelledby': 'images-heading', class: 'panel images-panel' },
    h('h2', { id: 'images-heading' }, 'Pictures'), list, form);
}
