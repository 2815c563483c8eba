// Log in, register, and the account page.
import { get, patch, put } from '../api.js';
import { busy, h, replace, toast } from '../dom.js';
import { humanize, when } from '../format.js';
import { actionError, clearErrors, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { currentUser, logIn, register, remember } from '../session.js';

// next is where to go afterwards: a path on this site only.
function next(ctx) {
  const n = ctx.query.get('next') || '/';
  return n.startsWith('/') && !n.startsWith('//') ? n : '/';
}

function withNext(path, ctx) {
  const n = ctx.query.get('next');
  return n ? `${path}?next=${encodeURIComponent(n)}` : path;
}

function alreadyIn(ctx, heading) {
  const u = currentUser();
  replace(ctx.main,
    h('h1', {}, heading),
    h('p', {}, `You are logged in as ${u.username}.`),
    h('p', {}, h('a', { href: next(ctx) }, 'Continue')));
}

/** loginPage: /login?next= */
export function loginPage(ctx) {
  ctx.title('Log in');
  if (currentUser()) return alreadyIn(ctx, 'Log in');
  const submit = h('button', { type: 'submit', id: 'login-submit' }, 'Log in');
  const form = h('form', { id: 'login-form', class: 'narrow', novalidate: true },
    field({ id: 'login-login', name: 'login', label: 'Username or e-mail', attrs: { autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' } }),
    field({ id: 'login-password', name: 'password', label: 'Password', type: 'password', attrs: { autocomplete: 'current-password', required: true } }),
    h('div', { class: 'actions' }, submit),
    actionError('login-error'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const restore = busy(submit, 'Logging in…');
    try {
      const u = await logIn(form.elements.login.value.trim(), form.elements.password.value);
      toast(`Welcome back, ${u.username}.`);
      navigate(next(ctx), { replace: true });
    } catch (err) {
      restore();
      if (err.status === 429) {
        const wait = err.problem.detail || 'too many attempts';
        err.problem = { ...err.problem, detail: `${wait}; please wait a little and try again` };
      }
      showError(form, err);
    }
  });
  replace(ctx.main,
    h('h1', {}, 'Log in'),
    form,
    h('p', {}, 'New here? ', h('a', { href: withNext('/register', ctx) }, 'Create an account')));
}

/** registerPage: /register?next= */
export function registerPage(ctx) {
  ctx.title('Register');
  if (currentUser()) return alreadyIn(ctx, 'Register');
  const submit = h('button', { type: 'submit', id: 'register-submit' }, 'Create account');
  const form = h('form', { id: 'register-form', class: 'narrow', novalidate: true },
    field({
      id: 'register-username', name: 'username', label: 'Username',
      hint: '3 to 50 characters: letters, digits, “_”, “.” or “-”.',
      attrs: { autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', maxlength: 50 },
    }),
    field({
      id: 'register-display-name', name: 'display_name', label: 'Display name (optional)',
      hint: 'How we address you; staff see it on your orders.', attrs: { autocomplete: 'name', maxlength: 100 },
    }),
    field({ id: 'register-email', name: 'email', label: 'E-mail', type: 'email', attrs: { autocomplete: 'email', required: true, maxlength: 100 } }),
    field({
      id: 'register-password', name: 'password', label: 'Password', type: 'password',
      hint: '8 to 128 characters, not your username or e-mail.',
      attrs: { autocomplete: 'new-password', required: true },
    }),
    h('div', { class: 'actions' }, submit),
    actionError('register-error'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const restore = busy(submit, 'Creating your account…');
    try {
      const u = await register(form.elements.username.value.trim(), form.elements.email.value.trim(), form.elements.password.value,
        form.elements.display_name.value.trim());
      toast(`Welcome, ${u.username}: your account is ready.`);
      navigate(next(ctx), { replace: true });
    } catch (err) {
      restore();
      showError(form, err);
    }
  });
  replace(ctx.main,
    h('h1', {}, 'Create an account'),
    form,
    h('p', {}, 'Have an account? ', h('a', { href: withNext('/login', ctx) }, 'Log in')));
}

/** accountPage: /account, the caller's own account: what it is, and forms
 * to change the display name, the e-mail address and the password. */
export async function accountPage(ctx) {
  ctx.title('Your account');
  if (!currentUser()) {
    replace(ctx.main,
      h('h1', {}, 'Your account'),
      h('p', {}, 'Log in to see your account.'),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '/login?next=/account' }, 'Log in')));
    return;
  }
  let me;
  try {
    me = await get('/api/v1/users/me', { signal: ctx.signal });
  } catch (err) {
    if (err.status === 401) return accountPage(ctx);
    throw err;
  }
  const summary = h('dl', { id: 'account-summary', class: 'panel' });
  const show = (u) => {
    replace(summary,
      h('dt', {}, 'Username'), h('dd', { id: 'account-username' }, u.username),
      h('dt', {}, 'Display name'), h('dd', { id: 'account-display-name' }, u.display_name || '—'),
      h('dt', {}, 'E-mail'), h('dd', { id: 'account-email' }, u.email),
      h('dt', {}, 'Roles'), h('dd', { id: 'account-roles' }, u.roles.length ? u.roles.map(humanize).join(', ') : 'none'),
      h('dt', {}, 'Member since'), h('dd', { id: 'account-since' }, when(u.created_at)));
  };
  show(me);

  // Each form sends what it changes and shows the answer's account.
  const changed = (u, message) => {
    me = u;
    show(u);
    remember(u);
    toast(message);
  };
  const nameForm = accountForm('account-name', 'Display name', 'Save name',
    [field({ id: 'account-name-input', name: 'display_name', label: 'Display name', value: me.display_name,
      hint: 'Up to 100 characters; leave empty for none.', attrs: { autocomplete: 'name', maxlength: 100 } })],
    async (form) => changed(await patch('/api/v1/users/me', { display_name: form.elements.display_name.value.trim() }),
      'Your display name is saved.'));
  const emailForm = accountForm('account-email', 'E-mail address', 'Change e-mail',
    [field({ id: 'account-email-input', name: 'email', label: 'New e-mail', type: 'email', value: me.email, attrs: { autocomplete: 'email', required: true, maxlength: 100 } }),
      field({ id: 'account-email-password', name: 'current_password', label: 'Current password', type: 'password', attrs: { autocomplete: 'current-password', required: true } })],
    async (form) => {
      changed(await patch('/api/v1/users/me', { email: form.elements.email.value.trim(), current_password: form.elements.current_password.value }),
        'Your e-mail address is changed.');
      form.elements.current_password.value = '';
    });
  const passwordForm = accountForm('account-password', 'Password', 'Change password',
    [field({ id: 'account-current-password', name: 'current_password', label: 'Current password', type: 'password', attrs: { autocomplete: 'current-password', required: true } }),
      field({ id: 'account-new-password', name: 'new_password', label: 'New password', type: 'password',
        hint: '8 to 128 characters, not your username or e-mail. Every other session of yours is logged out.', attrs: { autocomplete: 'new-password', required: true } })],
    async (form) => {
      await put('/api/v1/users/me/password', { current_password: form.elements.current_password.value, new_password: form.elements.new_password.value });
      form.reset();
      toast('Your password is changed; your other sessions are logged out.');
      replace(form.querySelector('.done'), 'Password changed. Your other sessions are logged out.');
    });
  replace(ctx.main,
    h('h1', {}, 'Your account'),
    summary,
    h('div', { class: 'account-forms' }, nameForm, emailForm, passwordForm));
}

// accountForm is one titled form of the account page; act sends it and
// throws an ApiError that is shown at the fields it names.
function accountForm(id, title, label, fields, act) {
  const submit = h('button', { type: 'submit', id: `${id}-submit` }, label);
  const form = h('form', { id: `${id}-form`, class: 'narrow panel', novalidate: true, 'aria-labelledby': `${id}-title` },
    h('h2', { id: `${id}-title` }, title),
    fields,
    h('div', { class: 'actions' }, submit),
    h('p', { class: 'done', role: 'status', id: `${id}-done` }),
    actionError(`${id}-error`));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    replace(form.querySelector('.done'));
    const restore = busy(submit, 'Saving…');
    try {
      await act(form);
    } catch (err) {
      if (err.status === 429) {
        err.problem = { ...err.problem, detail: `${err.problem.detail || 'too many attempts'}; please wait a little and try again` };
      }
      showError(form, err);
    } finally {
      restore();
    }
  });
  return form;
}
