// Task inbox (mine, my groups, unassigned) and a task page: claim, hand back, complete with its form.
import * as api from './api.js';
import { h, mount, option, timeEl, debounce, showProblem, toast, ask } from './dom.js';
import { schemaForm, formProblem } from './schemaform.js';
import * as store from './store.js';

const VIEWS = [['mine', 'Mine'], ['groups', 'My groups'], ['unassigned', 'Unassigned'], ['all', 'All']];
const SORTS = [['due_at', 'Due date'], ['priority', 'Priority'], ['created_at', 'Created']];
const STATUSES = ['open', 'claimed', 'completed', 'cancelled'];

const isTaskEvent = (evt) => String(evt.type).startsWith('Task');
const taskLink = (t, text) => h('a', { href: `#/tasks/${encodeURIComponent(t.id)}` }, text);

export async function renderInbox(root, params, go) {
  const view = params.get('view') || 'mine';
  const sort = params.get('sort') || 'due_at';
  const status = params.get('status') || '';
  const apply = (changes) => {
    const next = { view, sort, status, ...changes };
    go(`#/tasks?${new URLSearchParams(Object.entries(next).filter(([, v]) => v))}`);
  };
  const problemBox = h('div', { class: 'problem', hidden: true });
  const tbody = h('tbody');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const summary = h('p', { class: 'muted', 'aria-live': 'polite' });
  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Tasks')),
    h('div', { class: 'counts', role: 'group', 'aria-label': 'Inbox view' }, VIEWS.map(([v, label]) => h('button', {
      type: 'button', class: `chip${v === view ? ' active' : ''}`, 'aria-pressed': String(v === view), onclick: () => apply({ view: v }),
    }, label))),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'task-status' }, 'Status'),
        h('select', { id: 'task-status', onchange: (e) => apply({ status: e.target.value }) },
          option('', 'Default'), STATUSES.map((s) => option(s, s, s === status)))),
      h('div', { class: 'field' }, h('label', { for: 'task-sort' }, 'Sort'),
        h('select', { id: 'task-sort', onchange: (e) => apply({ sort: e.target.value }) },
          SORTS.map(([v, l]) => option(v, l, v === sort))))),
    problemBox,
    h('div', { class: 'table-wrap' },
      h('table', { class: 'cases' },
        h('caption', { class: 'sr-only' }, 'Tasks in this view'),
        h('thead', {}, h('tr', {}, ['Task', 'Case', 'Status', 'Assignee', 'Groups', 'Due', 'Priority']
          .map((c) => h('th', { scope: 'col' }, c)))),
        tbody)),
    summary, more);

  const row = (t) => h('tr', {},
    h('td', { 'data-label': 'Task' }, taskLink(t, t.title)),
    h('td', { 'data-label': 'Case' }, h('a', { href: `#/cases/${encodeURIComponent(t.case_id)}` }, t.case_number), ` ${t.case_title}`),
    h('td', { 'data-label': 'Status' }, h('span', { class: `badge status-${t.status}` }, t.status)),
    h('td', { 'data-label': 'Assignee' }, t.claimed_by ? `${t.claimed_by} (claimed)` : t.assignee || '—'),
    h('td', { 'data-label': 'Groups' }, (t.candidate_groups || []).join(', ') || '—'),
    h('td', { 'data-label': 'Due' }, t.due_at ? timeEl(t.due_at) : '—'),
    h('td', { 'data-label': 'Priority' }, String(t.priority)));

  let cursor = null;
  let loaded = 0;
  async function load(reset) {
    try {
      const page = await api.get('/api/tasks', { view, sort, status, limit: 50, cursor: reset ? undefined : cursor });
      if (reset) { tbody.replaceChildren(); loaded = 0; }
      tbody.append(...page.items.map(row));
      loaded += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
      summary.textContent = loaded ? `${loaded} task${loaded === 1 ? '' : 's'} shown${cursor ? ', more available' : ''}` : 'No tasks here.';
      showProblem(problemBox, null);
    } catch (err) { showProblem(problemBox, err); }
  }
  more.addEventListener('click', () => load(false));
  await load(true);
  const refresh = debounce(() => load(true), 400);
  return store.listen((evt) => { if (isTaskEvent(evt)) refresh(); });
}

export async function renderTask(root, id, go) {
  const problemBox = h('div', { class: 'problem', hidden: true });
  const body = h('div');
  mount(root, problemBox, body);
  const me = store.session.me;

  async function act(path, payload = {}) {
    try {
      await api.command(`/api/tasks/${encodeURIComponent(id)}/${path}`, payload);
      await draw();
      return true;
    } catch (err) { showProblem(problemBox, err); return false; }
  }

  let shownVersion = 0;
  // onlyIfChanged: a live event redraws only when this task moved on (a redraw resets a half-filled form)
  async function draw(onlyIfChanged = false) {
    const t = await api.get(`/api/tasks/${encodeURIComponent(id)}`);
    if (onlyIfChanged && t.version <= shownVersion) return;
    shownVersion = t.version;
    document.title = `${t.title} · casestream`;
    const active = t.status === 'open' || t.status === 'claimed';
    const holder = t.claimed_by || t.assignee;
    const mayComplete = active && (holder === me.user || store.isModerator());
    const buttons = [];
    if (t.status === 'open') buttons.push(h('button', { type: 'button', class: 'primary', onclick: () => act('claim') }, 'Claim'));
    if (t.status === 'claimed' && (t.claimed_by === me.user || store.isModerator())) {
      buttons.push(h('button', { type: 'button', onclick: () => act('unclaim') }, 'Hand back'));
    }
    if (active && (store.isModerator() || (t.kind === 'ad-hoc' && t.created_by === me.user))) {
      buttons.push(h('button', {
        type: 'button',
        onclick: async () => {
          const values = await ask({ title: 'Cancel task', fields: [{ name: 'reason', label: 'Reason', multiline: true }], submit: 'Cancel task' });
          if (values && await act('cancel', { reason: values.reason })) toast('Task cancelled', 'success');
        },
      }, 'Cancel task'));
    }
    let completion = null;
    if (mayComplete) {
      const form = t.form_schema ? schemaForm(t.form_schema, {}, {}) : null;
      const submit = h('button', { type: 'submit', class: 'primary' }, 'Complete');
      completion = h('form', {
        class: 'card form', novalidate: true, 'aria-labelledby': 'complete-h',
        onsubmit: async (e) => {
          e.preventDefault();
          submit.disabled = true;
          try {
            await api.command(`/api/tasks/${encodeURIComponent(id)}/complete`, { data: form ? form.collect() : {} });
            toast('Task completed', 'success');
            go('#/tasks');
          } catch (err) { formProblem(problemBox, form, err); } finally { submit.disabled = false; }
        },
      }, h('h2', { id: 'complete-h' }, 'Complete'), form ? form.element : null, h('div', { class: 'actions' }, submit));
    }
    const fact = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '—')];
    mount(body,
      h('div', { class: 'page-head' }, h('h1', {}, t.title), h('div', { class: 'actions' }, buttons)),
      h('dl', { class: 'card facts' },
        fact('Case', h('a', { href: `#/cases/${encodeURIComponent(t.case_id)}` }, `${t.case_number} ${t.case_title}`)),
        fact('Status', h('span', { class: `badge status-${t.status}` }, t.status)),
        fact('Assignee', t.assignee), fact('Claimed by', t.claimed_by),
        fact('Groups', (t.candidate_groups || []).join(', ') || null),
        fact('Due', t.due_at ? timeEl(t.due_at) : null), fact('Priority', String(t.priority)),
        fact('Created', [timeEl(t.created_at), ` by ${t.created_by}`]),
        t.kind === 'process' ? fact('Process', `${t.process_instance_key} · ${t.element_id}`) : null,
        t.completed_at ? fact(t.status === 'cancelled' ? 'Cancelled' : 'Completed', [timeEl(t.completed_at), ` by ${t.completed_by}`]) : null,
        t.cancel_reason ? fact('Reason', t.cancel_reason) : null),
      t.description ? h('p', { class: 'card' }, t.description) : null,
      t.data ? h('pre', { class: 'card' }, JSON.stringify(t.data, null, 2)) : null,
      completion);
  }

  await draw();
  const refresh = debounce(() => draw(true).catch((err) => showProblem(problemBox, err)), 400);
  return store.listen((evt) => { if (isTaskEvent(evt)) refresh(); });
}

// The tasks of one case, with a form for an ad-hoc task; `refresh(open)` re-reads them (the case page calls it).
export function caseTasks(caseId) {
  const list = h('ul', { class: 'task-list' });
  const box = h('div', { class: 'problem', hidden: true });
  const adder = h('div');
  let shownOpen = null;
  const section = h('section', { class: 'card', 'aria-labelledby': 'tasks-h' }, h('h2', { id: 'tasks-h' }, 'Tasks'), box, list, adder);

  const addForm = () => {
    const field = (id, label, attrs) => h('div', { class: 'field' }, h('label', { for: id }, label), h('input', { id, name: id, ...attrs }));
    return h('form', {
      class: 'group', novalidate: true, 'aria-label': 'Add a task',
      onsubmit: async (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        const due = String(f.get('task-due') || '');
        const body = {
          title: String(f.get('task-title') || '').trim(),
          assignee: String(f.get('task-assignee') || '').trim() || undefined,
          candidate_groups: String(f.get('task-groups') || '').split(',').map((g) => g.trim()).filter(Boolean),
          due_at: due ? new Date(due).toISOString() : undefined,
          priority: Number(f.get('task-priority') || 50),
        };
        try {
          await api.command(`/api/cases/${encodeURIComponent(caseId)}/tasks`, body);
          toast('Task added', 'success');
          e.target.reset();
          await load(true);
        } catch (err) { showProblem(box, err); }
      },
    },
    h('h3', {}, 'Add a task'),
    field('task-title', 'Title *', { required: true, maxlength: 200 }),
    field('task-assignee', 'Assignee', { list: 'users', autocomplete: 'off' }),
    field('task-groups', 'Candidate groups (comma-separated)', { placeholder: 'caseworker' }),
    field('task-due', 'Due', { type: 'datetime-local' }),
    field('task-priority', 'Priority (0-100)', { type: 'number', min: 0, max: 100, value: 50 }),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Add task')));
  };

  async function load(open) {
    try {
      const page = await api.get('/api/tasks', { view: 'all', case_id: caseId, sort: 'created_at', limit: 200 });
      mount(list, page.items.length ? page.items.map((t) => h('li', {},
        taskLink(t, t.title), ' ', h('span', { class: `badge status-${t.status}` }, t.status),
        h('span', { class: 'muted' }, ` ${t.claimed_by || t.assignee || (t.candidate_groups || []).join(', ') || 'anyone'}`)))
        : h('li', { class: 'muted' }, 'No tasks.'));
      // re-created only when the case opens or closes, so a case update does not wipe what is being typed
      if (open !== undefined && open !== shownOpen) { shownOpen = open; mount(adder, open ? addForm() : null); }
      showProblem(box, null);
    } catch (err) { showProblem(box, err); }
  }
  return { element: section, refresh: (open) => load(open) };
}
