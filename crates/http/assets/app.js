// kolokol web UI: the little JavaScript the pages need. Served from this node only (CSP script-src 'self'); it
// never builds HTML from text: record text reaches the page only as server-escaped markup or as textContent.
'use strict';

(function () {
  const tokenMeta = document.querySelector('meta[name="kolokol-token"]');
  const token = tokenMeta ? tokenMeta.content : '';

  function flash(message) {
    const box = document.getElementById('flash');
    if (!box) return;
    box.textContent = message;
    box.hidden = false;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Kolokol-Token': token },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(data.error || ('HTTP ' + response.status));
      error.data = data;
      throw error;
    }
    return data;
  }

  // Buttons: follow, unfollow, block, unblock (data-author), get (data-target), copy (data-copy: an input's id).
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-action]');
    if (!button) return;
    const action = button.dataset.action;
    if (action === 'copy') {
      const input = document.getElementById(button.dataset.copy);
      input.select();
      if (navigator.clipboard) navigator.clipboard.writeText(input.value).catch(() => {});
      return;
    }
    if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      if (action === 'get') {
        await post('/api/v1/get', { target: button.dataset.target });
      } else if (action === 'sharing') {
        await post('/api/v1/sharing', { share_watched: button.dataset.share === 'true' });
      } else {
        await post('/api/v1/' + action, { author: button.dataset.author });
      }
      window.location.reload();
    } catch (error) {
      flash(error.message);
      button.disabled = false;
    }
  });

  // Text files: fetched and shown as plain text (capped), never parsed as HTML.
  for (const pre of document.querySelectorAll('pre[data-src]')) {
    fetch(pre.dataset.src, { credentials: 'same-origin' })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status))))
      .then((text) => { pre.textContent = text.slice(0, 2000000); })
      .catch((error) => { pre.textContent = error.message; });
  }

  // Live progress: elements with data-refresh and an id are replaced by the same element of a fresh copy of the
  // page. The copy is parsed inert (DOMParser runs no script) and its markup was escaped by the server.
  const live = document.querySelectorAll('[data-refresh][id]');
  if (live.length > 0) {
    const every = Math.max(1000, Number(live[0].dataset.refresh) || 2000);
    setInterval(async () => {
      try {
        const response = await fetch(window.location.href, { credentials: 'same-origin' });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), 'text/html');
        for (const element of document.querySelectorAll('[data-refresh][id]')) {
          const replacement = fresh.getElementById(element.id);
          if (replacement) element.replaceWith(document.importNode(replacement, true));
        }
      } catch (_) { /* the node may be restarting: try again next time */ }
    }, every);
  }

  // Publish: upload each file with progress (XMLHttpRequest reports upload progress, fetch does not), then publish.
  const form = document.getElementById('publish-form');
  if (form) {
    const bar = document.getElementById('upload-bar');
    const status = document.getElementById('upload-status');
    const box = document.getElementById('publish-progress');
    const button = document.getElementById('publish-button');
    const warning = document.getElementById('metadata-warning');
    const allow = document.getElementById('allow-metadata');

    // A confirmation is for the files it was shown for: choosing other files asks again.
    document.getElementById('files').addEventListener('change', () => {
      warning.hidden = true;
      allow.required = false;
      allow.checked = false;
    });

    // The node refused files that would keep metadata: list them (as text) and require the confirmation.
    const showMetadata = (data) => {
      const list = document.getElementById('metadata-list');
      list.replaceChildren();
      for (const item of data.metadata) {
        const li = document.createElement('li');
        li.textContent = item.file + ': ' + item.kept;
        list.appendChild(li);
      }
      const hidden = document.getElementById('metadata-hidden');
      hidden.textContent = data.hidden || '';
      hidden.hidden = !data.hidden;
      allow.checked = false;
      allow.required = true;
      warning.hidden = false;
    };

    const upload = (file, onProgress) => new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/ui/upload?name=' + encodeURIComponent(file.name));
      xhr.setRequestHeader('X-Kolokol-Token', token);
      xhr.setRequestHeader('Content-Type', 'application/octet-stream');
      xhr.upload.onprogress = (e) => onProgress(e.loaded);
      xhr.onload = () => {
        let data = {};
        try { data = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        if (xhr.status === 200 && data.upload) resolve(data.upload);
        else reject(new Error(data.error || ('HTTP ' + xhr.status)));
      };
      xhr.onerror = () => reject(new Error(form.dataset.failed));
      xhr.send(file);
    });

    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const files = Array.from(document.getElementById('files').files);
      const thumbnail = document.getElementById('thumbnail').files[0];
      const all = thumbnail ? files.concat([thumbnail]) : files;
      const total = all.reduce((sum, f) => sum + f.size, 0) || 1;
      let done = 0;
      button.disabled = true;
      box.hidden = false;
      status.textContent = form.dataset.uploading;
      try {
        const ids = [];
        for (const file of all) {
          ids.push(await upload(file, (loaded) => {
            bar.value = Math.floor(((done + loaded) * 100) / total);
          }));
          done += file.size;
        }
        bar.value = 100;
        status.textContent = form.dataset.publishing;
        const tags = document.getElementById('tags').value.split(',').map((t) => t.trim()).filter(Boolean);
        const published = await post('/ui/publish', {
          uploads: thumbnail ? ids.slice(0, -1) : ids,
          thumbnail: thumbnail ? ids[ids.length - 1] : null,
          title: document.getElementById('title').value,
          description: document.getElementById('description').value,
          tags,
          lang: document.getElementById('lang').value.trim() || null,
          allow_metadata: !warning.hidden && allow.checked,
          keep_names: document.getElementById('keep-names').checked,
        });
        window.location.href = '/p/' + published.id;
      } catch (error) {
        if (error.data && Array.isArray(error.data.metadata)) {
          showMetadata(error.data);
          box.hidden = true;
        } else {
          status.textContent = form.dataset.failed + ': ' + error.message;
        }
        button.disabled = false;
      }
    });
  }
})();
