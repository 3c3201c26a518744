// Case detail: data form (merge patch), stage/assignment/queue/lifecycle actions, comments, timeline, history.
import * as api from './api.js';
import { h, mount, option, timeEl, fmtValue, debounce, showProblem, toast, ask } from './dom.js';
import { schemaForm, formProblem, diffData } from './schemaform.js';
import * as store from './store.js';
import { caseTasks } from './inbox.js';
import { caseDocuments } from './documents.js';

const caseUrl = (id, rest = '') => `/api/cases/${encodeURIComponent(id)}${rest}`;

export async function renderDetail(root, id, go) {
  const problemBox = h('div', { class: 'problem', hidden: true });
  let doc = null;
  let spec = null;
  let dirty = false;
  const banner = h('div', { class: 'notice', hidden: true, role: 'status' }, 'This case was changed by someone else. ',
    h('button', { type: 'button', onclick: () => { dirty = false; load(); } }, 'Reload'));
  const head = h('div', { class: 'page-head' });
  const actions = h('section', { class: 'card actions-panel', 'aria-labelledby': 'act-h' });
  const dataSection = h('section', { class: 'card', 'aria-labelledby': 'data-h' });
  const commentsSection = h('section', { class: 'card', 'aria-labelledby': 'com-h' });
  const timelineSection = h('section', { class: 'card', 'aria-labelledby': 'tl-h' });
  const tasks = caseTasks(id);
  const documents = caseDocuments(id);
  mount(root, banner, head, problemBox,
    h('div', { class: 'detail-grid' },
      h('div', { class: 'main-col' }, dataSection, documents.element, commentsSection),
      h('div', { class: 'side-col' }, actions, tasks.element, timelineSection)));

  // Run a command, then re-read the case (wait_for = the command's position).
  async function run(path, body, done, box = problemBox) {
    try {
      await api.command(caseUrl(id, path), { expected_version: doc?.version, ...body });
      showProblem(box, null);
      if (done) toast(done, 'success');
      dirty = false;
      await load();
      return true;
    } catch (err) { showProblem(box, err); if (box !== problemBox) box.scrollIntoView({ block: 'nearest' }); return false; }
  }

  function renderHead() {
    const title = h('h1', {}, h('span', { class: 'muted' }, doc.number, ' '), doc.title);
    const rename = h('button', { type: 'button', class: 'link', onclick: async () => {
      const v = await ask({ title: 'Rename case', fields: [{ name: 'title', label: 'Title', required: true, value: doc.title }] });
      if (v && v.title.trim() && v.title !== doc.title) run('/title', { title: v.title.trim() }, 'Renamed');
    } }, 'Rename');
    const stageName = spec.stages.find((s) => s.key === doc.stage)?.name || doc.stage;
    mount(head, h('div', {}, title,
      h('p', { class: 'meta' },
        h('span', { class: `badge status-${doc.status}` }, doc.status), ' ',
        h('span', { class: 'badge' }, 'Stage: ', stageName), ' ',
        `${spec.name} v${doc.definition_version} · opened by ${doc.opened_by} `, timeEl(doc.opened_at),
        ` · updated by ${doc.updated_by} `, timeEl(doc.updated_at), ` · version ${doc.version}`),
      doc.closed_reason ? h('p', { class: 'meta' }, 'Closed', doc.resolution ? ` as ${doc.resolution}` : '', ': ', doc.closed_reason) : null),
    h('div', { class: 'row' }, rename, h('a', { class: 'button', href: `#/cases/${encodeURIComponent(id)}/history` }, 'History'),
      h('a', { class: 'button', href: `#/board/${encodeURIComponent(doc.definition_key)}` }, 'Board')));
  }

  async function renderActions() {
    const open = doc.status === 'open';
    const current = spec.stages.find((s) => s.key === doc.stage);
    const box = h('div', { class: 'problem', hidden: true });
    const queues = await store.allQueues().catch(() => []);
    const queueKeys = [...new Set([...(spec.queues || []), ...queues.map((q) => q.key)])];
    const queueSel = h('select', { id: 'act-queue', disabled: !open },
      option('', '(no queue)', !doc.queue), queueKeys.map((k) => option(k, queues.find((q) => q.key === k)?.name || k, k === doc.queue)));
    queueSel.addEventListener('change', () => run('/queue', { queue: queueSel.value || null }, 'Queue changed', box));
    const who = h('input', { id: 'act-assignee', list: 'users', value: doc.assignee || '', disabled: !open, autocomplete: 'off' });
    const me = store.session.me?.user;
    mount(actions,
      h('h2', { id: 'act-h' }, 'Actions'), box,
      h('div', { class: 'group', role: 'group', 'aria-label': 'Move to stage' },
        h('h3', {}, 'Move to stage'),
        open && current?.transitions?.length
          ? current.transitions.map((t) => h('button', { type: 'button', class: 'stage-btn',
            onclick: () => run('/stage', { stage: t }, 'Stage changed', box) }, '→ ', spec.stages.find((s) => s.key === t)?.name || t))
          : h('p', { class: 'muted' }, open ? 'No transitions from this stage.' : 'The case is not open.')),
      h('form', { class: 'group', onsubmit: (e) => { e.preventDefault(); if (who.value.trim()) run('/assign', { assignee: who.value.trim() }, 'Assigned', box); } },
        h('label', { for: 'act-assignee' }, h('h3', {}, 'Assignee')),
        h('div', { class: 'row' }, who, h('button', { type: 'submit', disabled: !open }, 'Assign')),
        h('div', { class: 'row' },
          me && doc.assignee !== me ? h('button', { type: 'button', disabled: !open, onclick: () => run('/assign', { assignee: me }, 'Assigned to you', box) }, 'Assign to me') : null,
          doc.assignee ? h('button', { type: 'button', disabled: !open, onclick: () => run('/unassign', {}, 'Unassigned', box) }, 'Unassign') : null)),
      h('div', { class: 'group' }, h('label', { for: 'act-queue' }, h('h3', {}, 'Queue')), queueSel),
      h('div', { class: 'group row' },
        open ? h('button', { type: 'button', class: 'danger', onclick: async () => {
          const fields = [{ name: 'reason', label: 'Reason', required: true, multiline: true }];
          if (spec.statuses?.length) fields.push({ name: 'resolution', label: 'Resolution', options: [{ value: '', label: '(none)' }, ...spec.statuses.map((s) => ({ value: s, label: s }))] });
          const v = await ask({ title: `Close ${doc.number}`, fields, submit: 'Close case' });
          if (v) run('/close', { reason: v.reason, resolution: v.resolution || undefined }, 'Closed', box);
        } }, 'Close…') : null,
        doc.status === 'closed' ? h('button', { type: 'button', onclick: () => reasonThen('/reopen', 'Reopen', 'Reopened', box) }, 'Reopen…') : null,
        doc.status === 'closed' ? h('button', { type: 'button', class: 'danger', onclick: () => reasonThen('/archive', 'Archive', 'Archived', box) }, 'Archive…') : null));
  }

  async function reasonThen(path, verb, done, box) {
    const v = await ask({ title: `${verb} ${doc.number}`, fields: [{ name: 'reason', label: 'Reason', required: true, multiline: true }], submit: verb });
    if (v) run(path, { reason: v.reason }, done, box);
  }

  function renderData() {
    const box = h('div', { class: 'problem', hidden: true });
    const form = schemaForm(spec.schema, spec.ui_schema, doc.data);
    const editable = doc.status === 'open';
    const save = h('button', { type: 'submit', class: 'primary', disabled: !editable }, 'Save changes');
    const el = h('form', { novalidate: true, oninput: () => { dirty = true; }, onchange: () => { dirty = true; },
      onsubmit: async (e) => {
        e.preventDefault();
        const patch = form.patch(doc.data);
        if (!Object.keys(patch).length) { toast('Nothing changed'); return; }
        save.disabled = true;
        try {
          await api.command(caseUrl(id, '/data'), { patch, expected_version: doc.version });
          toast('Saved', 'success'); dirty = false; formProblem(box, form, null); await load();
        } catch (err) { formProblem(box, form, err); } finally { save.disabled = !editable; }
      } }, box, h('fieldset', { disabled: !editable }, h('legend', { class: 'sr-only' }, 'Case data'), form.element),
    h('div', { class: 'actions' }, save, h('button', { type: 'button', onclick: () => { dirty = false; renderData(); } }, 'Reset')));
    mount(dataSection, h('h2', { id: 'data-h' }, 'Data'), el);
  }

  function renderComments() {
    const me = store.session.me?.user;
    const all = doc.comments || [];
    const children = (parent) => all.filter((c) => (c.parent_id || null) === parent);
    const box = h('div', { class: 'problem', hidden: true });
    const composer = (initial, onSubmit, label, onCancel) => {
      const text = h('textarea', { rows: 3, required: true, 'aria-label': label, value: initial || '' });
      const f = h('form', { class: 'composer', onsubmit: async (e) => {
        e.preventDefault();
        if (text.value.trim()) await onSubmit(text.value.trim());
      } }, text, h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, label),
        onCancel ? h('button', { type: 'button', onclick: () => onCancel(f) }, 'Cancel') : null));
      return f;
    };
    const thread = (c) => {
      const kids = children(c.id);
      if (c.deleted && !kids.some((k) => !k.deleted || children(k.id).length)) return null;
      const body = h('div', { class: 'comment-body' });
      const tools = h('div', { class: 'comment-tools' });
      const li = h('li', { class: 'comment', id: `comment-${c.id}` },
        h('div', { class: 'comment-meta' }, h('strong', {}, c.deleted ? '—' : c.author), ' ', timeEl(c.created_at),
          c.edited_at ? h('span', { class: 'muted', title: `edited ${c.history?.length || 1}×` }, ' (edited)') : null),
        body, tools, kids.length ? h('ol', { class: 'replies' }, kids.map(thread)) : null);
      if (c.deleted) { body.append(h('em', { class: 'muted' }, 'Comment deleted')); return li; }
      body.append(h('p', {}, c.body));
      tools.append(
        h('button', { type: 'button', class: 'link', onclick: () => tools.after(composer('', (t) => run('/comments', { body: t, parent_id: c.id, expected_version: undefined }, 'Reply added', box), 'Reply', (f) => f.remove())) }, 'Reply'),
        c.author === me ? h('button', { type: 'button', class: 'link', onclick: () => {
          body.replaceChildren(composer(c.body, (t) => run(`/comments/${encodeURIComponent(c.id)}/edit`, { body: t, expected_version: undefined }, 'Comment edited', box), 'Save', () => body.replaceChildren(h('p', {}, c.body))));
        } }, 'Edit') : null,
        c.author === me || store.isModerator() ? h('button', { type: 'button', class: 'link danger', onclick: async () => {
          const v = await ask({ title: 'Delete comment', fields: [{ name: 'reason', label: 'Reason (optional)' }], submit: 'Delete' });
          if (v) run(`/comments/${encodeURIComponent(c.id)}/delete`, { reason: v.reason || undefined, expected_version: undefined }, 'Comment deleted', box);
        } }, 'Delete') : null);
      return li;
    };
    mount(commentsSection, h('h2', { id: 'com-h' }, `Comments (${doc.comment_count ?? all.filter((c) => !c.deleted).length})`), box,
      h('ol', { class: 'comments' }, children(null).map(thread)),
      composer('', (t) => run('/comments', { body: t, expected_version: undefined }, 'Comment added', box), 'Add comment'));
  }

  async function renderTimeline() {
    try {
      const entries = await api.get(caseUrl(id, '/timeline'));
      const items = Array.isArray(entries) ? entries : entries.items || [];
      mount(timelineSection, h('h2', { id: 'tl-h' }, 'Timeline'),
        h('ol', { class: 'timeline' }, [...items].reverse().map((e) => h('li', {},
          h('div', { class: 'comment-meta' }, h('strong', {}, e.actor), ' ', timeEl(e.at), h('span', { class: 'muted' }, ` v${e.version}`)),
          h('div', {}, e.summary)))));
    } catch (err) { mount(timelineSection, h('h2', { id: 'tl-h' }, 'Timeline'), h('div', { class: 'problem' }, err.detail || err.title)); }
  }

  async function load() {
    try {
      doc = await api.get(caseUrl(id));
      spec = await store.specFor(doc.definition_key, doc.definition_version);
      banner.hidden = true;
      document.title = `${doc.number} ${doc.title} · casestream`;
      renderHead();
      await renderActions();
      renderData();
      renderComments();
      renderTimeline();
      tasks.refresh(doc.status === 'open');
      documents.refresh();
    } catch (err) { showProblem(problemBox, err); }
  }

  await load();
  const refresh = debounce(() => (dirty ? (banner.hidden = false) : load()), 300);
  return store.listen((evt) => { if (evt.entry?.case_id === id) refresh(); });
}

const FIELDS = ['title', 'stage', 'status', 'assignee', 'queue', 'resolution', 'closed_reason', 'definition_version'];

export async function renderHistory(root, id, params, go) {
  const problemBox = h('div', { class: 'problem', hidden: true });
  const current = await api.get(caseUrl(id));
  const versions = Array.from({ length: current.version }, (_, i) => current.version - i);
  const from = Number(params.get('from')) || Math.max(1, current.version - 1);
  const to = Number(params.get('to')) || current.version;
  const pick = (name, value) => h('select', { id: `hist-${name}`, onchange: (e) => {
    const qs = new URLSearchParams({ from: String(from), to: String(to), [name]: e.target.value });
    go(`#/cases/${encodeURIComponent(id)}/history?${qs}`);
  } }, versions.map((v) => option(String(v), `version ${v}${v === current.version ? ' (current)' : ''}`, v === value)));
  const out = h('div');
  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, h('span', { class: 'muted' }, current.number, ' '), 'History'),
      h('a', { class: 'button', href: `#/cases/${encodeURIComponent(id)}` }, 'Back to case')),
    h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'hist-from' }, 'From'), pick('from', from)),
      h('div', { class: 'field' }, h('label', { for: 'hist-to' }, 'To'), pick('to', to))),
    problemBox, out);
  try {
    const at = (v) => (v === current.version ? current : api.get(caseUrl(id, '/history'), { version: v }));
    const [a, b] = await Promise.all([at(from), at(to)]);
    const fieldChanges = FIELDS.filter((f) => JSON.stringify(a[f]) !== JSON.stringify(b[f]));
    const dataChanges = diffData(a.data || {}, b.data || {});
    const row = (label, op, before, after) => h('tr', { class: `op-${op}` },
      h('th', { scope: 'row' }, label), h('td', { class: 'old' }, fmtValue(before)), h('td', { class: 'new' }, op === 'remove' ? '(removed)' : fmtValue(after)));
    mount(out,
      h('section', { class: 'card' }, h('h2', {}, `Changes from version ${from} to ${to}`),
        fieldChanges.length || dataChanges.length
          ? h('div', { class: 'table-wrap' }, h('table', { class: 'diff' },
            h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, `v${from}`), h('th', { scope: 'col' }, `v${to}`))),
            h('tbody', {}, fieldChanges.map((f) => row(f, 'set', a[f], b[f])),
              dataChanges.map((c) => row(`data.${c.path.join('.')}`, c.op, c.old, c.new)))))
          : h('p', { class: 'muted' }, 'No differences in fields or data.')),
      h('section', { class: 'card' }, h('h2', {}, `Snapshot at version ${from}`),
        h('p', { class: 'meta' }, `${a.title} · stage ${a.stage} · ${a.status} · assignee ${a.assignee || '—'} · updated `, timeEl(a.updated_at)),
        h('pre', { class: 'mono' }, JSON.stringify(a.data, null, 2))));
  } catch (err) { showProblem(problemBox, err); }
}
