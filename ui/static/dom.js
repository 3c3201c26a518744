// Tiny DOM helpers. All user content goes in as text nodes or attribute values, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function mount(target, ...children) {
  target.replaceChildren();
  append(target, children);
  return target;
}

export function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function timeEl(iso) {
  return h('time', { datetime: iso || '' }, fmtDate(iso));
}

export function fmtValue(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export function option(value, label, selected) {
  return h('option', { value, selected: selected ? true : undefined }, label ?? value);
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

// A status message region (polite live region) for success/info toasts.
export function toast(message, kind = 'info') {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  region.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 3500);
}

// Render a problem+json error (title, detail and each errors[].path) into a container next to a form.
export function showProblem(container, problem) {
  if (!container) return;
  if (!problem) { container.replaceChildren(); container.hidden = true; return; }
  const errors = Array.isArray(problem.errors) ? problem.errors : [];
  mount(container,
    h('strong', {}, problem.title || 'Error', problem.status ? ` (${problem.status})` : ''),
    problem.detail ? h('p', {}, problem.detail) : null,
    errors.length ? h('ul', {}, errors.map((e) => h('li', {}, h('code', {}, e.path || '?'), ': ', e.message || ''))) : null,
  );
  container.hidden = false;
  container.setAttribute('role', 'alert');
}

// A modal dialog asking for a few values (reason prompts etc.). Resolves to the values or null if cancelled.
export function ask({ title, fields, submit = 'OK' }) {
  return new Promise((resolve) => {
    const inputs = fields.map((f) => {
      const id = `ask-${f.name}`;
      const control = f.options
        ? h('select', { id, name: f.name }, f.options.map((o) => option(o.value, o.label)))
        : h(f.multiline ? 'textarea' : 'input', { id, name: f.name, required: f.required, rows: 3, value: f.value || '' });
      return h('div', { class: 'field' }, h('label', { for: id }, f.label, f.required ? ' *' : ''), control);
    });
    const dialog = h('dialog', { class: 'dialog', 'aria-label': title },
      h('form', { method: 'dialog' },
        h('h2', {}, title), inputs,
        h('div', { class: 'actions' },
          h('button', { type: 'submit', value: 'ok', class: 'primary' }, submit),
          h('button', { type: 'button', onclick: () => dialog.close('cancel') }, 'Cancel'))));
    dialog.addEventListener('close', () => {
      const ok = dialog.returnValue === 'ok';
      const values = {};
      for (const f of fields) values[f.name] = dialog.querySelector(`[name="${f.name}"]`).value;
      dialog.remove();
      resolve(ok ? values : null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
