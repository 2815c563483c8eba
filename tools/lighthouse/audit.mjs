// Audits the storefront's pages with Lighthouse, on the mobile and the
// desktop preset, in one Chromium (CHROME_PATH) driven by puppeteer-core.
// The session and the cart are made the way a shopper makes them: the
// page's own modules (session.js, cart.js, api.js) register, fill the cart
// and place an order, so the audit follows their storage as it changes.
//
// Usage: node audit.mjs BASE_URL OUT_DIR
// Prints a table of the four category scores and the layout shift of each
// page and preset; writes each report as JSON under OUT_DIR; exits 1 when a
// page scores below MIN_SCORE (default 95) in a category or shifts by
// MAX_CLS (default 0.1) or more.
import fs from 'node:fs/promises';
import path from 'node:path';
import lighthouse from 'lighthouse';
import desktopConfig from 'lighthouse/core/config/desktop-config.js';
import puppeteer from 'puppeteer-core';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: node audit.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
const chrome = process.env.CHROME_PATH || '/usr/bin/chromium';
const minScore = Number(process.env.MIN_SCORE || 95);
const maxCLS = Number(process.env.MAX_CLS || 0.1);
const categories = ['performance', 'accessibility', 'best-practices', 'seo'];
const presets = { mobile: undefined, desktop: desktopConfig };

const browser = await puppeteer.launch({
  executablePath: chrome,
  headless: true,
  args: ['--disable-gpu', '--disable-dev-shm-usage', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
});
try {
  const page = await browser.newPage();
  await page.goto(base, { waitUntil: 'networkidle0' });

  // A shopper: registered and logged in, two products in the cart, one
  // order placed and confirmed.
  const shopper = await page.evaluate(async () => {
    const { get, post } = await import('/js/api.js');
    const session = await import('/js/session.js');
    const cart = await import('/js/cart.js');
    const name = `lighthouse${Date.now()}`;
    await session.register(name, `${name}@example.com`, 'correct horse battery');
    const { items } = await get('/api/v1/products?limit=2');
    for (const p of items) cart.add(p, 1);
    const order = await post('/api/v1/orders', {
      items: items.map((p) => ({ product_id: p.id, quantity: 1 })),
      payment_method: 'pm_card_visa',
    });
    for (let i = 0; i < 100; i++) {
      const o = await get(`/api/v1/orders/${order.id}`);
      if (o.status !== 'pending' && o.status !== 'awaiting_payment') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { product: items[0].id, order: order.id };
  });

  const pages = {
    home: '/',
    search: '/?q=coffee',
    product: `/products/${shopper.product}`,
    cart: '/cart',
    checkout: '/checkout',
    order: `/orders/${shopper.order}`,
  };
  await fs.mkdir(outDir, { recursive: true });
  const rows = [];
  let failed = false;
  for (const [preset, config] of Object.entries(presets)) {
    for (const [name, p] of Object.entries(pages)) {
      // A run that Lighthouse itself could not measure (a runtime error
      // such as NO_NAVSTART on a loaded machine) is tried again, twice.
      let result;
      for (let attempt = 0; attempt < 3 && !(result && !result.lhr.runtimeError); attempt++) {
        result = await lighthouse(new URL(p, base).href, {
          output: 'json', logLevel: 'error', onlyCategories: categories,
          disableStorageReset: true, // keep the session and the cart
        }, config, page);
      }
      await fs.writeFile(path.join(outDir, `${name}-${preset}.json`), result.report);
      const lhr = result.lhr;
      const scores = categories.map((c) => Math.round((lhr.categories[c]?.score ?? 0) * 100));
      const cls = lhr.audits['cumulative-layout-shift']?.numericValue ?? NaN;
      const bad = scores.some((s) => s < minScore) || !(cls < maxCLS) || lhr.runtimeError;
      failed ||= Boolean(bad);
      rows.push([name, preset, ...scores.map(String), cls.toFixed(3), bad ? 'BELOW' : 'ok',
        lhr.runtimeError ? lhr.runtimeError.code : '']);
    }
  }
  const head = ['page', 'preset', 'perf', 'a11y', 'best', 'seo', 'CLS', '', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const r of [head, ...rows]) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
  console.log(`reports: ${outDir}/<page>-<preset>.json; bar: each category >= ${minScore}, CLS < ${maxCLS}`);
  process.exitCode = failed ? 1 : 0;
} finally {
  await browser.close();
}
