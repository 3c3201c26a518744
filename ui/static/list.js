// Case list (filters, search, sort, cursor paging, counts) and the "new case" form.
import * as api from './api.js';
import { h, mount, option, timeEl, debounce, showProblem, toast } from './dom.js';
import { schemaForm, formProblem } from './schemaform.js';
import * as store from './store.js';

const FILTERS = ['definition_key', 'status', 'stage', 'queue', 'assignee', 'q', 'sort', 'order'];
const SORTS = [['updated_at', 'Last updated'], ['opened_at', 'Opened'], ['number', 'Number'], ['title', 'Title']];

export async function renderList(root, params, go) {
  const filters = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const [defs, queues] = await Promise.all([store.allDefinitions(), store.allQueues().catch(() => [])]);
  const selectedDef = defs.find((d) => d.key === filters.definition_key);
  const stages = selectedDef
    ? selectedDef.latest.stages
    : [...new Map(defs.flatMap((d) => d.latest?.stages || []).map((s) => [s.key, s])).values()];

  const apply = (changes) => {
    const next = { ...filters, ...changes };
    if ('definition_key' in changes) next.stage = '';
    const qs = new URLSearchParams(Object.entries(next).filter(([, v]) => v));
    go(`#/cases${qs.toString() ? `?${qs}` : ''}`);
  };
  const select = (name, label, opts) => h('div', { class: 'field' },
    h('label', { for: `flt-${name}` }, label),
    h('select', { id: `flt-${name}`, onchange: (e) => apply({ [name]: e.target.value }) },
      option('', 'Any'), opts.map(([v, l]) => option(v, l, v === filters[name]))));
  const searchInput = h('input', { id: 'flt-q', type: 'search', value: filters.q, placeholder: 'Search title, number, data…' });
  searchInput.addEventListener('input', debounce(() => apply({ q: searchInput.value.trim() }), 400));
  const assigneeInput = h('input', { id: 'flt-assignee', list: 'users', value: filters.assignee, placeholder: 'anyone' });
  assigneeInput.addEventListener('change', () => apply({ assignee: assigneeInput.value.trim() }));

  const counts = h('div', { class: 'counts', 'aria-label': 'Counts' });
  const problemBox = h('div', { class: 'problem', hidden: true });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });

  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Cases'),
      h('a', { class: 'button primary', href: `#/new${filters.definition_key ? `?definition=${encodeURIComponent(filters.definition_key)}` : ''}` }, 'New case')),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => { e.preventDefault(); apply({ q: searchInput.value.trim() }); } },
      h('div', { class: 'field grow' }, h('label', { for: 'flt-q' }, 'Search'), searchInput),
      select('definition_key', 'Definition', defs.map((d) => [d.key, d.name])),
      select('status', 'Status', store.STATUSES.map((s) => [s, s])),
      select('stage', 'Stage', stages.map((s) => [s.key, s.name])),
      select('queue', 'Queue', queues.map((q) => [q.key, q.name || q.key])),
      h('div', { class: 'field' }, h('label', { for: 'flt-assignee' }, 'Assignee'), assigneeInput),
      h('div', { class: 'field' }, h('label', { for: 'flt-sort' }, 'Sort'),
        h('select', { id: 'flt-sort', onchange: (e) => apply({ sort: e.target.value }) },
          SORTS.map(([v, l]) => option(v, l, v === (filters.sort || 'updated_at'))))),
      h('div', { class: 'field' }, h('label', { for: 'flt-order' }, 'Order'),
        h('select', { id: 'flt-order', onchange: (e) => apply({ order: e.target.value }) },
          option('desc', 'Descending', filters.order !== 'asc'), option('asc', 'Ascending', filters.order === 'asc'))),
      h('button', { type: 'button', onclick: () => go('#/cases') }, 'Clear')),
    counts, problemBox,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'cases' },
        h('caption', { class: 'sr-only' }, 'Cases matching the filters'),
        h('thead', {}, h('tr', {}, ['Number', 'Title', 'Definition', 'Stage', 'Status', 'Assignee', 'Queue', 'Updated']
          .map((c) => h('th', { scope: 'col' }, c)))),
        tbody)),
    summary, more);

  const query = {
    definition_key: filters.definition_key, status: filters.status, stage: filters.stage, queue: filters.queue,
    assignee: filters.assignee, q: filters.q, sort: filters.sort || 'updated_at', order: filters.order || 'desc',
  };
  const defName = (key) => defs.find((d) => d.key === key)?.name || key;
  const stageName = (c) => defs.find((d) => d.key === c.definition_key)?.latest?.stages.find((s) => s.key === c.stage)?.name || c.stage;
  let loaded = 0;
  let cursor = null;

  const row = (c) => h('tr', {},
    h('td', { 'data-label': 'Number' }, h('a', { href: `#/cases/${encodeURIComponent(c.id)}` }, c.number)),
    h('td', { 'data-label': 'Title' }, h('a', { href: `#/cases/${encodeURIComponent(c.id)}` }, c.title)),
    h('td', { 'data-label': 'Definition' }, defName(c.definition_key)),
    h('td', { 'data-label': 'Stage' }, stageName(c)),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge status-${c.status}` }, c.status)),
    h('td', { 'data-label': 'Assignee' }, c.assignee || '—'),
    h('td', { 'data-label': 'Queue' }, c.queue || '—'),
    h('td', { 'data-label': 'Updated' }, timeEl(c.updated_at)));

  async function load(reset) {
    try {
      const page = await api.get('/api/cases', { ...query, limit: reset ? Math.min(Math.max(50, loaded), 200) : 50, cursor: reset ? undefined : cursor });
      if (reset) { tbody.replaceChildren(); loaded = 0; }
      tbody.append(...page.items.map(row));
      loaded += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      summary.textContent = loaded ? `${loaded} case${loaded === 1 ? '' : 's'} shown${cursor ? ', more available' : ''}` : 'No cases match.';
      showProblem(problemBox, null);
    } catch (err) { showProblem(problemBox, err); }
  }
  async function loadCounts() {
    try {
      const c = await api.get('/api/counts', { definition_key: filters.definition_key });
      const chips = (field, label) => Object.entries(c[field] || {}).filter(([k]) => k).map(([k, n]) => h('button', {
        type: 'button', class: `chip${filters[field] === k ? ' active' : ''}`, 'aria-pressed': String(filters[field] === k),
        onclick: () => apply({ [field]: filters[field] === k ? '' : k }),
      }, `${label}: ${field === 'stage' ? (stages.find((s) => s.key === k)?.name || k) : k} `, h('b', {}, n)));
      mount(counts, chips('status', 'Status'), chips('stage', 'Stage'));
    } catch { counts.replaceChildren(); }
  }
  more.addEventListener('click', () => load(false));
  await Promise.all([load(true), loadCounts()]);
  const refresh = debounce(() => { load(true); loadCounts(); }, 400);
  return store.listen((evt) => { if (evt.entry?.case_id) refresh(); });
}

export async function renderNew(root, params, go) {
  const defs = await store.allDefinitions();
  let key = params.get('definition') || defs[0]?.key || '';
  const problemBox = h('div', { class: 'problem', hidden: true });
  const host = h('div');
  let form = null;
  const titleInput = h('input', { id: 'new-title', name: 'title', required: true, maxlength: 300, 'aria-describedby': 'new-title-err' });
  const showDef = async () => {
    const def = defs.find((d) => d.key === key);
    if (!def) { mount(host, h('p', { class: 'muted' }, 'No case definitions yet.')); form = null; return; }
    form = schemaForm(def.latest.schema, def.latest.ui_schema, {});
    mount(host, form.element);
  };
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Open case');
  mount(root,
    h('h1', {}, 'New case'),
    h('form', {
      class: 'card form', novalidate: true,
      onsubmit: async (e) => {
        e.preventDefault();
        if (!form) return;
        submit.disabled = true;
        try {
          const reply = await api.command('/api/cases', { definition_key: key, title: titleInput.value.trim(), data: form.collect() });
          toast(`Opened ${reply.number}`, 'success');
          go(`#/cases/${encodeURIComponent(reply.id)}`);
        } catch (err) {
          formProblem(problemBox, form, err);
          const titleErr = (err.errors || []).find((x) => x.path === 'title');
          document.getElementById('new-title-err').textContent = titleErr ? titleErr.message : '';
        } finally { submit.disabled = false; }
      },
    },
    problemBox,
    h('div', { class: 'field' }, h('label', { for: 'new-def' }, 'Definition'),
      h('select', { id: 'new-def', onchange: (e) => { key = e.target.value; showDef(); } },
        defs.map((d) => option(d.key, d.name, d.key === key)))),
    h('div', { class: 'field' }, h('label', { for: 'new-title' }, 'Title', h('span', { class: 'req' }, ' *')), titleInput,
      h('small', { class: 'field-error', id: 'new-title-err' })),
    host,
    h('div', { class: 'actions' }, submit, h('a', { class: 'button', href: '#/cases' }, 'Cancel'))));
  await showDef();
}
