// Log in and register.
import { busy, h, replace, toast } from '../dom.js';
import { actionError, field, showError } from '../forms.js';
import { navigate } from '../router.js';
import { currentUser, logIn, register } from '../session.js';

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
      const u = await register(form.elements.username.value.trim(), form.elements.email.value.trim(), form.elements.password.value);
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
