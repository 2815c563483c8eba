// Staff: every account, searched by username, e-mail or display name, with
// its roles to change and a suspension to set or lift. The user module
// decides; this page only asks it.
import { del, get, post, put, query } from '../api.js';
import { busy, h, replace, toast } from '../dom.js';
import { clock, humanize, when } from '../format.js';
import { actionError, checkbox, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { currentUser } from '../session.js';
import { staffForbidden, staffNav, staffOnly } from '../widgets/staff.js';

const ROLES = ['customer', 'admin'];

/** staffUsersPage: /staff/users?q=&cursor= */
export async function staffUsersPage(ctx) {
  if (!staffOnly(ctx)) return;
  ctx.title('Users');
  const q = ctx.query.get('q') || '';
  const cursor = ctx.query.get('cursor') || '';
  let page;
  try {
    page = await get(`/api/v1/users${query({ q, cursor, limit: 20 })}`, { signal: ctx.signal });
  } catch (err) {
    return staffForbidden(ctx, err);
  }
  const form = h('form', { class: 'search compact', id: 'user-search', role: 'search' },
    field({ id: 'user-search-q', name: 'q', label: 'Search users', type: 'search', value: q,
      hint: 'Part of a username, e-mail address or display name.', attrs: { maxlength: 100, autocapitalize: 'none', spellcheck: 'false' } }),
    h('button', { type: 'submit' }, 'Search'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate(`/staff/users${query({ q: form.elements.q.value.trim() })}`);
  });

  const n = page.items.length;
  replace(ctx.main,
    staffNav('/staff/users'),
    h('h1', {}, 'Users'),
    form,
    h('p', { role: 'status', id: 'users-status' },
      n ? `${n} account${n === 1 ? '' : 's'}${q ? ` matching “${q}”` : ''}, oldest first${page.next_cursor ? '; more on the next page' : ''}. Loaded at ${clock()}.`
        : q ? `No account matches “${q}”.` : 'No accounts.'),
    n ? h('ul', { class: 'list', id: 'staff-users' }, page.items.map(userCard)) : null,
    h('nav', { class: 'pager', 'aria-label': 'Pages' },
      cursor ? h('a', { href: `/staff/users${query({ q })}` }, '← First') : null,
      page.next_cursor ? h('a', { href: `/staff/users${query({ q, cursor: page.next_cursor })}`, id: 'next-page' }, 'More →') : null));
}

// userCard is one account: who it is, a form for its roles, and its
// standing with the button that changes it.
function userCard(u) {
  const card = h('li', { class: 'card user-card', 'data-user-id': u.id, 'data-username': u.username });
  const self = currentUser()?.id === u.id;
  const draw = (acct) => {
    const slug = acct.id.split('-')[0];
    const rolesSubmit = h('button', { type: 'submit', class: 'secondary', id: `roles-save-${slug}` }, 'Save roles');
    const rolesForm = h('form', { class: 'inline-form user-roles', 'aria-label': `Roles of ${acct.username}` },
      h('fieldset', {}, h('legend', {}, 'Roles'),
        h('div', { class: 'checks' }, ROLES.map((r) => checkbox({ id: `role-${r}-${slug}`, name: 'roles', value: r, label: humanize(r), checked: acct.roles.includes(r) })))),
      rolesSubmit,
      actionError(`roles-error-${slug}`));
    rolesForm.addEventListener('submit', async (e) => {
      e.preventDefault();
      const roles = [...rolesForm.querySelectorAll('input[name="roles"]:checked')].map((c) => c.value);
      const restore = busy(rolesSubmit, 'Saving…');
      try {
        const next = await put(`/api/v1/users/${acct.id}/roles`, { roles });
        toast(`Roles of ${acct.username} saved: ${next.roles.length ? next.roles.map(humanize).join(', ') : 'none'}.`);
        draw(next);
      } catch (err) {
        restore();
        showError(rolesForm, err);
      }
    });

    const suspended = acct.suspended_at !== null;
    const standing = h('div', { class: 'user-standing' },
      h('p', {}, suspended
        ? h('span', { class: 'badge status-suspended', 'data-standing': 'suspended' }, 'Suspended')
        : h('span', { class: 'badge status-active', 'data-standing': 'active' }, 'Active'),
      suspended ? h('span', { class: 'muted' }, ` since ${when(acct.suspended_at)}`) : null),
      self ? h('p', { class: 'hint' }, 'This is you: another admin can suspend your account.')
        : h('button', { type: 'button', class: suspended ? 'secondary' : 'danger', id: `standing-${slug}`, onclick: toggle },
          suspended ? 'Reinstate' : 'Suspend'),
      actionError(`standing-error-${slug}`));
    async function toggle(e) {
      const button = e.currentTarget;
      const restore = busy(button, suspended ? 'Reinstating…' : 'Suspending…');
      try {
        const path = `/api/v1/users/${acct.id}/suspension`;
        const next = suspended ? await del(path) : await post(path);
        toast(next.suspended_at ? `${acct.username} is suspended and logged out everywhere.` : `${acct.username} is reinstated.`);
        draw(next);
      } catch (err) {
        restore();
        showError(standing, err);
      }
    }

    card.dataset.standing = suspended ? 'suspended' : 'active';
    replace(card,
      h('h2', { class: 'card-title' }, acct.display_name ? `${acct.display_name} (${acct.username})` : acct.username),
      h('p', { class: 'muted' }, h('a', { href: `mailto:${acct.email}` }, acct.email), ` · member since ${when(acct.created_at)}`),
      rolesForm,
      standing);
  };
  draw(u);
  return card;
}
