// Kanban board per definition: HTML5 drag-and-drop between stage columns (allowed transitions only),
// with a keyboard-friendly "move to" select on each card as an alternative.
import * as api from './api.js';
import { h, mount, option, fmtValue, debounce, showProblem, toast } from './dom.js';
import * as store from './store.js';

export async function renderBoard(root, key, go) {
  const defs = await store.allDefinitions();
  if (!key && defs.length) { go(`#/board/${encodeURIComponent(defs[0].key)}`); return undefined; }
  const problemBox = h('div', { class: 'problem', hidden: true });
  const counts = h('div', { class: 'counts', 'aria-label': 'Counts' });
  const board = h('div', { class: 'board', role: 'list' });
  const live = h('p', { class: 'sr-only', 'aria-live': 'polite' });
  let dragging = null; // { id, from, card, next }
  let busy = false;
  let columns = [];
  const def = defs.find((d) => d.key === key);
  const fieldLabel = (k) => def?.latest?.schema?.properties?.[k]?.title || k;

  mount(root,
    h('div', { class: 'page-head' }, h('h1', {}, 'Board'),
      h('div', { class: 'field inline' }, h('label', { for: 'board-def' }, 'Definition'),
        h('select', { id: 'board-def', onchange: (e) => go(`#/board/${encodeURIComponent(e.target.value)}`) },
          defs.map((d) => option(d.key, d.name, d.key === key))))),
    counts, problemBox, live, board);
  if (!key) { mount(board, h('p', { class: 'muted' }, 'No case definitions yet.')); return undefined; }

  const allowed = (from, to) => from !== to && (columns.find((c) => c.stage === from)?.transitions || []).includes(to);
  const nameOf = (stage) => columns.find((c) => c.stage === stage)?.name || stage;

  async function move(card, from, to, restore) {
    if (!allowed(from, to)) {
      restore();
      showProblem(problemBox, { title: 'Move not allowed', detail: `A case cannot move from ${nameOf(from)} to ${nameOf(to)}.` });
      return;
    }
    busy = true;
    card.classList.add('pending');
    try {
      await api.command(`/api/cases/${encodeURIComponent(card.dataset.id)}/stage`, { stage: to, expected_version: Number(card.dataset.version) });
      showProblem(problemBox, null);
      live.textContent = `Moved ${card.dataset.number} to ${nameOf(to)}`;
      toast(`Moved ${card.dataset.number} to ${nameOf(to)}`, 'success');
    } catch (err) {
      restore();
      showProblem(problemBox, err);
      live.textContent = `Move refused: ${err.detail || err.title}`;
    } finally {
      busy = false;
      card.classList.remove('pending');
      await load();
    }
  }

  const cardEl = (c, col) => {
    const el = h('article', { class: 'kcard', draggable: 'true', role: 'listitem', tabindex: '0',
      dataset: { id: c.id, version: String(c.version), number: c.number, stage: col.stage },
      'aria-label': `${c.number} ${c.title}` });
    const targets = col.transitions || [];
    const mover = targets.length ? h('select', { class: 'mover', 'aria-label': `Move ${c.number} to stage`,
      onchange: (e) => { if (e.target.value) move(el, col.stage, e.target.value, () => { e.target.value = ''; }); } },
    option('', 'Move to…'), targets.map((t) => option(t, nameOf(t)))) : null;
    el.append(
      h('a', { href: `#/cases/${encodeURIComponent(c.id)}`, draggable: 'false' }, h('span', { class: 'muted' }, c.number), ' ', c.title),
      h('dl', {}, Object.entries(c.fields || {}).map(([k, v]) => [h('dt', {}, fieldLabel(k)), h('dd', {}, fmtValue(v))])),
      h('div', { class: 'kcard-foot' }, h('span', { class: 'assignee' }, c.assignee || 'unassigned'), mover));
    el.addEventListener('dragstart', (e) => {
      dragging = { id: c.id, from: col.stage, card: el, parent: el.parentElement, next: el.nextSibling };
      e.dataTransfer.effectAllowed = 'move';
      e.dataTransfer.setData('text/plain', c.id);
      el.classList.add('dragging');
      for (const colEl of board.querySelectorAll('.column')) {
        colEl.classList.toggle('drop-ok', allowed(col.stage, colEl.dataset.stage));
        colEl.classList.toggle('drop-no', colEl.dataset.stage !== col.stage && !allowed(col.stage, colEl.dataset.stage));
      }
    });
    el.addEventListener('dragend', () => {
      el.classList.remove('dragging');
      for (const colEl of board.querySelectorAll('.column')) colEl.classList.remove('drop-ok', 'drop-no', 'over');
      dragging = null;
    });
    return el;
  };

  const columnEl = (col) => {
    const list = h('div', { class: 'cards' }, col.cards.map((c) => cardEl(c, col)));
    const el = h('section', { class: 'column', role: 'listitem', dataset: { stage: col.stage }, 'aria-label': `${col.name}: ${col.count} cases` },
      h('header', {}, h('h2', {}, col.name), h('span', { class: 'count', title: 'open cases in this stage' }, col.count)),
      list, col.count > col.cards.length ? h('a', { class: 'more', href: `#/cases?definition_key=${encodeURIComponent(key)}&stage=${encodeURIComponent(col.stage)}&status=open` }, `All ${col.count}…`) : null);
    el.addEventListener('dragover', (e) => {
      if (!dragging) return;
      e.preventDefault(); // accept every drop so a refused one can explain itself
      e.dataTransfer.dropEffect = 'move'; // refused targets are marked by .drop-no and explained on drop
      el.classList.add('over');
    });
    el.addEventListener('dragleave', (e) => { if (!el.contains(e.relatedTarget)) el.classList.remove('over'); });
    el.addEventListener('drop', (e) => {
      e.preventDefault();
      el.classList.remove('over');
      if (!dragging || dragging.from === col.stage) return;
      const { card, parent, next, from } = dragging;
      list.prepend(card); // optimistic
      move(card, from, col.stage, () => parent.insertBefore(card, next && next.parentElement === parent ? next : null));
    });
    return el;
  };

  async function load() {
    try {
      const [kb, c] = await Promise.all([
        api.get(`/api/kanban/${encodeURIComponent(key)}`),
        api.get('/api/counts', { definition_key: key }).catch(() => null),
      ]);
      columns = kb.columns || [];
      document.title = `${kb.name || key} board · casestream`;
      if (dragging) return; // never rebuild under the user's pointer
      mount(board, columns.map(columnEl));
      if (c) {
        mount(counts, Object.entries(c.status || {}).map(([k, n]) => h('a', { class: 'chip', href: `#/cases?definition_key=${encodeURIComponent(key)}&status=${encodeURIComponent(k)}` }, `${k}: `, h('b', {}, n))));
      }
    } catch (err) { showProblem(problemBox, err); }
  }

  await load();
  const refresh = debounce(() => { if (!busy && !dragging) load(); else refresh(); }, 400);
  return store.listen((evt) => { if (evt.entry?.case_id) refresh(); });
}
