// The shop's categories, fetched once per page load, and in the order a
// <select> shows them.
import { get } from '../api.js';

let categoriesCache = null;

/** categories lists every category once per page load. */
export async function categories(signal) {
  if (!categoriesCache) {
    const res = await get('/api/v1/categories', { signal });
    categoriesCache = res.items;
  }
  return categoriesCache;
}

/** categoryOptions orders categories as a tree: children under parents. */
export function categoryOptions(cats) {
  const bySlug = new Map(cats.map((c) => [c.slug, c]));
  const depth = (c) => (c.parent && bySlug.has(c.parent) && c.parent !== c.slug ? 1 + depth(bySlug.get(c.parent)) : 0);
  const path = (c) => (c.parent && bySlug.has(c.parent) && c.parent !== c.slug ? `${path(bySlug.get(c.parent))} › ${c.name}` : c.name);
  return [...cats]
    .sort((a, b) => path(a).localeCompare(path(b)))
    .map((c) => ({ value: c.slug, label: `${'\u2003'.repeat(Math.min(depth(c), 4))}${c.name}`, path: path(c) }));
}
