// Product pictures as cards and product pages show them. Every <img> gets
// the image's width and height, so the page keeps its room before the
// bytes arrive (no layout shift), and its alt text; a product without
// images gets a placeholder of the same shape.
import { h } from '../dom.js';

/** productImage is the product's primary image, or a placeholder.
 * opts.lazy defers loading (cards below the fold); opts.sizes is the
 * image's rendered width for the browser's choice. */
export function productImage(p, opts = {}) {
  const im = p.images && p.images[0];
  if (!im) {
    return h('div', { class: 'product-image placeholder', role: 'img', 'aria-label': `No picture of ${p.name} yet` });
  }
  return h('img', {
    class: 'product-image',
    src: im.url,
    alt: im.alt,
    width: im.width,
    height: im.height,
    loading: opts.lazy ? 'lazy' : 'eager',
    decoding: 'async',
    fetchpriority: opts.priority ? 'high' : null,
  });
}

/** productGallery is the product page's pictures: the primary image large,
 * the others as thumbnails after it. */
export function productGallery(p) {
  if (!p.images || p.images.length === 0) return h('div', { class: 'gallery' }, productImage(p));
  const [first, ...rest] = p.images;
  return h('div', { class: 'gallery' },
    productImage({ ...p, images: [first] }, { priority: true }),
    rest.length ? h('ul', { class: 'thumbs', 'aria-label': 'More pictures' },
      rest.map((im) => h('li', {}, h('img', { src: im.url, alt: im.alt, width: im.width, height: im.height, loading: 'lazy', decoding: 'async' })))) : null);
}
