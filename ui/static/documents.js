// A case's documents on its detail page: the list (name, size, scan status, thumbnail, download) and an upload
// control. An upload declares the file (name, type, size, SHA-256), PUTs the bytes straight to the presigned URL the
// server signed (object storage, or the API's own storage route), then asks the server to confirm it.
import * as api from './api.js';
import { h, mount, showProblem, timeEl, toast } from './dom.js';

const docsUrl = (id, rest = '') => `/api/cases/${encodeURIComponent(id)}${rest}`;

function size(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}

async function sha256(file) {
  // whole file in memory: the browser has no incremental SHA-256; the definition's size limit bounds it
  const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export function caseDocuments(caseId) {
  const box = h('div', { class: 'problem', hidden: true });
  const list = h('ul', { class: 'documents', 'aria-label': 'Documents of the case' });
  const picker = h('input', { type: 'file', id: 'doc-file', 'aria-label': 'File to upload' });
  const send = h('button', { type: 'submit', class: 'primary' }, 'Upload');
  const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); upload(); } },
    picker, send);
  const element = h('section', { class: 'card', 'aria-labelledby': 'docs-h' },
    h('h2', { id: 'docs-h' }, 'Documents'), box, list, form);

  async function upload() {
    const file = picker.files?.[0];
    if (!file) { showProblem(box, { title: 'No file chosen', detail: 'Choose a file to upload.' }); return; }
    send.disabled = true;
    try {
      const ticket = await api.command(docsUrl(caseId, '/uploads'), {
        filename: file.name, content_type: file.type || 'application/octet-stream', size: file.size,
        sha256: await sha256(file),
      });
      let put;
      try {
        put = await fetch(ticket.url, { method: 'PUT', body: file });  // signed URL: no bearer token goes with it
      } catch (err) {
        throw new api.Problem({ title: 'Upload failed', detail: `The storage could not be reached (${err.message}).` }, 0);
      }
      if (!put.ok) throw new api.Problem({ title: 'Upload refused', detail: `The storage answered ${put.status}.` }, put.status);
      await api.command(docsUrl(caseId, `/documents/${encodeURIComponent(ticket.document_id)}/uploads/${encodeURIComponent(ticket.upload_id)}/confirm`));
      showProblem(box, null);
      form.reset();
      toast(`Uploaded ${file.name}`, 'success');
      await refresh();
    } catch (err) { showProblem(box, err); } finally { send.disabled = false; }
  }

  async function download(doc) {
    try {
      const link = await api.get(docsUrl(caseId, `/documents/${encodeURIComponent(doc.id)}/download`));
      // the store serves it as an attachment: following the link saves the file, the page stays
      const a = h('a', { href: link.url, download: link.filename, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) { showProblem(box, err); }
  }

  async function thumbnail(doc, holder) {
    try {
      const bytes = await api.bytes(docsUrl(caseId, `/documents/${encodeURIComponent(doc.id)}/preview`));
      const reader = new FileReader();  // a data: URL, which the portal's img-src allows
      reader.onload = () => holder.replaceChildren(h('img', { src: reader.result, alt: `Preview of ${doc.filename}`, class: 'doc-thumb' }));
      reader.readAsDataURL(bytes);
    } catch { /* no preview: the document works without one */ }
  }

  function item(doc) {
    const newest = doc.versions[doc.versions.length - 1];
    const clean = doc.versions.filter((v) => v.status === 'available').pop();
    const holder = h('div', { class: 'doc-thumb-holder' });
    if (clean?.preview === 'ready') thumbnail(doc, holder);
    const state = newest.status === 'available' ? null
      : h('span', { class: `badge doc-${newest.status}` }, newest.status === 'pending' ? 'waiting for the virus scan' : `quarantined: ${newest.scan_reason || ''}`);
    return h('li', { class: 'document' }, holder,
      h('div', {},
        h('strong', {}, doc.filename), ' ', h('span', { class: 'muted' }, `${size(doc.size)} · v${doc.versions.length} · `), timeEl(doc.updated_at),
        doc.legal_hold ? h('span', { class: 'badge' }, 'legal hold') : null, ' ', state,
        clean ? h('div', {}, h('button', { type: 'button', class: 'link', onclick: () => download(doc) }, `Download ${doc.filename}`)) : null));
  }

  async function refresh() {
    try {
      const docs = await api.get(docsUrl(caseId, '/documents'));
      mount(list, docs.length ? docs.map(item) : h('li', { class: 'muted' }, 'No documents yet.'));
    } catch (err) { showProblem(box, err); }
  }

  return { element, refresh };
}
