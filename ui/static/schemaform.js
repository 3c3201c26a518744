// Forms generated from a case definition's JSON Schema (properties), plus merge-patch computation.
import { h, option, showProblem } from './dom.js';
import * as api from './api.js';

function uiFor(ui, name) {
  const entry = (ui && ui[name]) || {};
  return {
    widget: entry['ui:widget'] || entry.widget,
    label: entry['ui:title'] || entry.title || entry.label,
    help: entry['ui:help'] || entry.help || entry.description,
    readonly: entry['ui:readonly'] || entry.readonly,
    hidden: entry['ui:widget'] === 'hidden' || entry.widget === 'hidden',
    placeholder: entry['ui:placeholder'] || entry.placeholder,
    options: entry['ui:options'] || {},
    nested: entry,
  };
}

function orderOf(schema, ui) {
  const names = Object.keys(schema.properties || {});
  const order = (ui && (ui['ui:order'] || ui.order)) || [];
  const ranked = order.filter((n) => names.includes(n));
  const rest = names.filter((n) => !ranked.includes(n));
  const star = order.indexOf('*');
  return star < 0 ? [...ranked, ...rest] : [...ranked.slice(0, star), ...rest, ...ranked.slice(star)];
}

function typeOf(prop) {
  const t = Array.isArray(prop.type) ? prop.type.find((x) => x !== 'null') : prop.type;
  if (t) return t;
  if (prop.enum) return typeof prop.enum[0] === 'number' ? 'number' : 'string';
  if (prop.properties) return 'object';
  return 'json';
}

const toLocalInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};

// Reference records (ui:widget "record"): label enum options with the record's name, or offer a datalist.
const records = new Map();
function loadRecords(type) {
  if (!records.has(type)) {
    records.set(type, api.get(`/api/record-types/${encodeURIComponent(type)}/records`)
      .then((r) => (Array.isArray(r) ? r : r.items || [])).catch(() => []));
  }
  return records.get(type);
}
const recordName = (r) => r.data?.name || r.data?.title || '';
function labelRecords(select, type) {
  loadRecords(type).then((list) => {
    for (const o of select.options) {
      const r = list.find((x) => x.key === o.value);
      if (r && recordName(r)) o.textContent = `${recordName(r)} (${r.key})`;
    }
  });
}
function recordList(type) {
  const id = `records-${type}`;
  if (!document.getElementById(id)) {
    const dl = h('datalist', { id });
    document.body.append(dl);
    loadRecords(type).then((list) => dl.append(...list.map((r) => option(r.key, recordName(r) || r.key))));
  }
  return id;
}

// Build the control for one property. Each control is registered with a reader returning its value
// (undefined = empty) so collect() can rebuild the data object.
function control(path, prop, value, ui, readers) {
  const id = `f-${path.join('-')}`;
  const type = typeOf(prop);
  const attrs = { id, name: path.join('.'), 'aria-describedby': `${id}-err`, disabled: ui.readonly };
  let el; let read;
  const choices = prop.enum || (type === 'array' && prop.items?.enum) || null;
  if (choices && (ui.widget === 'radio' || ui.widget === 'checkboxes')) {
    const multi = type === 'array';
    const chosen = multi ? (Array.isArray(value) ? value : []) : [value];
    const boxes = choices.map((v, i) => h('input', { type: multi ? 'checkbox' : 'radio', id: `${id}-${i}`, name: attrs.name, value: String(v), checked: chosen.includes(v), disabled: ui.readonly }));
    el = h('div', { class: 'choices', id, role: multi ? 'group' : 'radiogroup', 'aria-describedby': attrs['aria-describedby'] },
      boxes.map((b, i) => h('label', { class: 'choice', for: b.id }, b, ' ', String(choices[i]))),
      multi ? null : h('button', { type: 'button', class: 'link', onclick: () => boxes.forEach((b) => { b.checked = false; }) }, 'clear'));
    read = () => {
      const v = boxes.filter((b) => b.checked).map((b) => choices[boxes.indexOf(b)]);
      return multi ? (v.length ? v : undefined) : v[0];
    };
  } else if (type === 'boolean') {
    el = h('input', { ...attrs, type: 'checkbox', checked: value === true });
    read = () => el.checked;
  } else if (prop.enum) {
    el = h('select', attrs, option('', '—'), prop.enum.map((v) => option(String(v), String(v), v === value)));
    if (ui.widget === 'record' && ui.options.record_type) labelRecords(el, ui.options.record_type);
    read = () => (el.value === '' ? undefined : prop.enum.find((v) => String(v) === el.value));
  } else if (type === 'array' && prop.items && prop.items.enum) {
    const chosen = Array.isArray(value) ? value : [];
    el = h('select', { ...attrs, multiple: true }, prop.items.enum.map((v) => option(String(v), String(v), chosen.includes(v))));
    read = () => { const v = [...el.selectedOptions].map((o) => prop.items.enum.find((x) => String(x) === o.value)); return v.length ? v : undefined; };
  } else if (type === 'array' && prop.items && typeOf(prop.items) === 'string') {
    el = h('textarea', { ...attrs, rows: 3, value: Array.isArray(value) ? value.join('\n') : '' });
    read = () => { const v = el.value.split('\n').map((s) => s.trim()).filter(Boolean); return v.length ? v : undefined; };
    ui.help = ui.help || 'One item per line';
  } else if (type === 'number' || type === 'integer') {
    const range = ui.widget === 'range' && prop.minimum !== undefined && prop.maximum !== undefined;
    el = h('input', { ...attrs, type: range ? 'range' : 'number', step: type === 'integer' ? 1 : 'any', min: prop.minimum, max: prop.maximum, value: value ?? (range ? prop.minimum : '') });
    const touched = { v: value !== undefined };
    if (range) {
      const out = h('output', { for: id }, value ?? '—');
      el.addEventListener('input', () => { touched.v = true; out.textContent = el.value; });
      el = h('div', { class: 'row' }, el, out);
    }
    const input = range ? el.firstChild : el;
    read = () => (input.value === '' || (range && !touched.v) ? undefined : Number(input.value));
    if (ui.options.currency) ui.help = ui.help || `in ${ui.options.currency}`;
  } else if (type === 'string') {
    const fmt = prop.format;
    const long = ui.widget === 'textarea' || (prop.maxLength || 0) > 200;
    if (long) el = h('textarea', { ...attrs, rows: ui.options.rows || 4, maxlength: prop.maxLength, value: value ?? '' });
    else if (fmt === 'date-time') el = h('input', { ...attrs, type: 'datetime-local', value: toLocalInput(value) });
    else {
      const kind = { date: 'date', email: 'email', uri: 'url', time: 'time' }[fmt || ui.widget] || 'text';
      el = h('input', { ...attrs, type: kind, maxlength: prop.maxLength, placeholder: ui.placeholder, value: value ?? '' });
    }
    read = fmt === 'date-time'
      ? () => (el.value ? (el.value === toLocalInput(value) ? value : new Date(el.value).toISOString()) : undefined)
      : () => (el.value === '' ? undefined : el.value);
    if (ui.widget === 'record' && ui.options.record_type) el.setAttribute('list', recordList(ui.options.record_type));
  } else {
    // Anything the form cannot model is edited as JSON.
    el = h('textarea', { ...attrs, rows: 4, class: 'mono', value: value === undefined ? '' : JSON.stringify(value, null, 2) });
    read = () => {
      if (el.value.trim() === '') return undefined;
      try { return JSON.parse(el.value); } catch { return el.value; }
    };
    ui.help = ui.help || 'JSON';
  }
  readers.push({ path, read });
  return el;
}

function fields(schema, data, ui, prefix, readers) {
  const required = schema.required || [];
  return orderOf(schema, ui).map((name) => {
    const prop = schema.properties[name] || {};
    const meta = uiFor(ui, name);
    if (meta.hidden) return null;
    const path = [...prefix, name];
    const label = meta.label || prop.title || name;
    const value = data ? data[name] : undefined;
    if (typeOf(prop) === 'object' && prop.properties) {
      return h('fieldset', { class: 'nested' }, h('legend', {}, label),
        fields(prop, value || {}, meta.nested, path, readers));
    }
    const id = `f-${path.join('-')}`;
    const el = control(path, prop, value, meta, readers);
    const help = meta.help || prop.description;
    const group = el.classList.contains('choices');
    return h(group ? 'fieldset' : 'div', { class: typeOf(prop) === 'boolean' ? 'field check' : 'field', dataset: { path: ['data', ...path].join('.') } },
      h(group ? 'legend' : 'label', { for: group ? undefined : id }, label, required.includes(name) ? h('span', { class: 'req', 'aria-label': 'required' }, ' *') : null),
      el,
      help ? h('small', { class: 'help' }, help) : null,
      h('small', { class: 'field-error', id: `${id}-err` }));
  });
}

// Render a schema form. Returns { element, collect(), showErrors(problem) }.
export function schemaForm(schema, uiSchema, data) {
  const readers = [];
  const element = h('div', { class: 'schema-fields' },
    schema && schema.properties ? fields(schema, data || {}, uiSchema || {}, [], readers)
      : h('p', { class: 'muted' }, 'This definition has no data fields.'));
  const collect = () => {
    const out = {};
    for (const { path, read } of readers) {
      const value = read();
      if (value === undefined) continue;
      let target = out;
      for (const part of path.slice(0, -1)) target = target[part] ??= {};
      target[path[path.length - 1]] = value;
    }
    return out;
  };
  const showErrors = (problem) => {
    for (const el of element.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of element.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    for (const raw of (problem && problem.errors) || []) {
      // "'x' is a required property" is reported on the parent object: point it at the field itself.
      const missing = /^'([^']+)' is a required property$/.exec(raw.message || '');
      const err = missing ? { path: `${raw.path}.${missing[1]}`, message: 'This field is required' } : raw;
      // Longest field path that prefixes the error path (e.g. data.items[0] -> data.items).
      const candidates = [...element.querySelectorAll('.field[data-path]')]
        .filter((f) => err.path === f.dataset.path || String(err.path).startsWith(`${f.dataset.path}.`) || String(err.path).startsWith(`${f.dataset.path}[`))
        .sort((a, b) => b.dataset.path.length - a.dataset.path.length);
      const field = candidates[0];
      if (!field) continue;
      field.querySelector('.field-error').textContent = err.message;
      for (const c of field.querySelectorAll('input, select, textarea')) c.setAttribute('aria-invalid', 'true');
    }
  };
  // RFC 7396 merge patch of the form's own fields against `before` (fields the form does not show are kept).
  const patch = (before) => {
    const out = {};
    for (const { path, read } of readers) {
      const value = read();
      const old = path.reduce((o, k) => (o && typeof o === 'object' ? o[k] : undefined), before);
      if (value === undefined ? old === undefined || old === null : JSON.stringify(value) === JSON.stringify(old)) continue;
      let target = out;
      for (const part of path.slice(0, -1)) target = target[part] ??= {};
      target[path[path.length - 1]] = value === undefined ? null : value;
    }
    return out;
  };
  return { element, collect, showErrors, patch };
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// Field-level changes between two objects: [{path, op, old, new}] (same shape as the server's diff).
export function diffData(before, after, prefix = []) {
  const changes = [];
  for (const key of [...new Set([...Object.keys(before || {}), ...Object.keys(after || {})])].sort()) {
    const path = [...prefix, key]; const a = before?.[key]; const b = after?.[key];
    if (b === undefined) changes.push({ op: 'remove', path, old: a, new: null });
    else if (a === undefined) changes.push({ op: 'set', path, old: null, new: b });
    else if (isObj(a) && isObj(b)) changes.push(...diffData(a, b, path));
    else if (JSON.stringify(a) !== JSON.stringify(b)) changes.push({ op: 'set', path, old: a, new: b });
  }
  return changes;
}

// Show a problem on a form: the summary box plus the per-field messages.
export function formProblem(box, form, problem) {
  showProblem(box, problem);
  form?.showErrors(problem);
}
