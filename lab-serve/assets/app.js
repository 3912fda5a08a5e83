// lab dashboard: plain JavaScript, shipped inside lab, nothing fetched from
// elsewhere. It reads lab serve's JSON API (/api/status, /api/graph,
// /api/runs, /api/runs/ID) and its event stream (/api/events). Everything
// from the server is put into the page as text (textContent), never as
// markup, except the graph's SVG, which lab-core draws and escapes.
'use strict';

(() => {
  const TOKEN_KEY = 'lab-token';
  const $ = (sel) => document.querySelector(sel);
  const state = {
    byMachine: new Map(), // machine -> its status
    running: new Set(), // machines with a step going on
    runId: null, // the run in progress the stream shows
    diffOf: null, // the machine and running system of the diff shown
    selected: null, // the past run whose timeline is shown
    streamUp: false,
    pollTimer: null,
    redraw: null, // a pending redraw of the live run's timeline
  };

  // ---- Small helpers.

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-') || k === 'title') e.setAttribute(k, v);
      else e[k] = v;
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // As `lab status` prints durations: 42s, 3m 07s, 2h 05m 09s.
  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600), m = Math.floor(seconds / 60) % 60, s = seconds % 60;
    const two = (n) => String(n).padStart(2, '0');
    if (h === 0 && m === 0) return `${s}s`;
    if (h === 0) return `${m}m ${two(s)}s`;
    return `${h}h ${two(m)}m ${two(s)}s`;
  }

  function clock(ms) {
    return ms ? new Date(ms).toLocaleString() : '-';
  }

  // ---- The token: asked for on a 401, kept in this tab (sessionStorage).

  let tokenPrompt = null;

  function askToken(refused) {
    if (tokenPrompt) return tokenPrompt;
    const dialog = $('#token-dialog');
    $('#token-error').hidden = !refused;
    $('#token-input').value = '';
    tokenPrompt = new Promise((resolve) => {
      $('#token-form').onsubmit = (ev) => {
        ev.preventDefault();
        sessionStorage.setItem(TOKEN_KEY, $('#token-input').value.trim());
        dialog.close();
        tokenPrompt = null;
        resolve();
      };
    });
    if (!dialog.open) dialog.showModal();
    return tokenPrompt;
  }

  async function api(path, options = {}) {
    for (;;) {
      const token = sessionStorage.getItem(TOKEN_KEY);
      const headers = Object.assign({}, options.headers || {});
      if (token) headers.Authorization = `Bearer ${token}`;
      const res = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
      if (res.status !== 401) return res;
      if (token) sessionStorage.removeItem(TOKEN_KEY);
      await askToken(Boolean(token));
    }
  }

  async function getJson(path) {
    const res = await api(path);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
    return res.json();
  }

  // ---- The fleet table: the columns of `lab status`, coloured.

  function cells(s) {
    const reach = s.reachable ? ['yes', 'ok'] : [`NO (${s.error || '?'})`, 'bad'];
    let health;
    if (s.healthy === null || s.healthy === undefined) health = ['-', 'unknown'];
    else if (s.healthy) health = ['healthy', 'ok'];
    else health = [s.failing && s.failing.length ? `FAILING (${s.failing[0].replace(/\n/g, ' ')})` : 'FAILING', 'bad'];
    const system = {
      'up-to-date': ['up to date', 'ok'],
      outdated: ['OUTDATED', 'warn'],
    }[s.generation] || ['unknown', 'unknown'];
    let reboot;
    if (!s.reachable) reboot = ['-', 'unknown'];
    else if (s.needsReboot) reboot = ['needed', 'warn'];
    else reboot = ['no', 'ok'];
    const uptime = [s.uptimeSeconds === null || s.uptimeSeconds === undefined ? '-' : duration(s.uptimeSeconds), ''];
    let last = ['-', ''];
    if (s.lastRun) {
      const cls = { finished: 'ok', failed: 'bad', 'rolled-back': 'bad', started: 'warn' }[s.lastRun.state] || 'unknown';
      last = [`${s.lastRun.step} ${s.lastRun.state} (${s.lastRun.runId})`, cls];
    }
    return [reach, health, system, reboot, uptime, last];
  }

  function verdict(s) {
    if (!s.reachable) return 'bad';
    if (s.healthy === false) return 'bad';
    if (s.generation === 'outdated' || s.needsReboot) return 'warn';
    if (s.healthy === true) return 'ok';
    return 'unknown';
  }

  function showStatus(status) {
    const body = $('#fleet tbody');
    body.replaceChildren();
    state.byMachine.clear();
    let ok = 0;
    for (const s of status.machines || []) {
      state.byMachine.set(s.machine, s);
      if (verdict(s) === 'ok') ok += 1;
      const row = el('tr', { 'data-machine': s.machine, class: `verdict-${verdict(s)}` });
      row.append(el('td', { class: 'machine' }, s.machine));
      cells(s).forEach(([text, cls], i) => {
        // Reachable, health and last run carry sentences: they wrap.
        const wraps = [0, 1, 5].includes(i) && text.length > 24;
        row.append(el('td', { class: `${cls}${wraps ? ' wrap' : ''}` }, text));
      });
      row.append(el('td', {}, s.role || ''));
      row.append(el('td', {}, (s.groups || []).join(', ')));
      row.append(el('td', {}, s.criticality || ''));
      body.append(row);
    }
    const n = (status.machines || []).length;
    $('#fleet-summary').textContent = `${n} machine${n === 1 ? '' : 's'}, ${ok} fine`;
    $('#probed').textContent = status.probedAtMs
      ? `probed ${clock(status.probedAtMs)}, every ${status.intervalSeconds} s`
      : `first probe under way (every ${status.intervalSeconds} s)`;
    colourGraph();
    fillDiffMachines();
    staleDiff();
  }

  async function loadStatus() {
    try {
      showStatus(await getJson('/api/status'));
    } catch (e) {
      $('#probed').textContent = `cannot read the status: ${e.message}`;
    }
  }

  // ---- What a deploy changes on one machine (/api/diff/NAME), on request:
  // the server builds the new system, so never on a timer.

  function fillDiffMachines() {
    const select = $('#diff-machine');
    const chosen = select.value;
    const names = [...state.byMachine.keys()];
    if (names.join('\n') === [...select.options].map((o) => o.value).join('\n')) return;
    select.replaceChildren(...names.map((n) => el('option', { value: n }, n)));
    if (names.includes(chosen)) select.value = chosen;
  }

  function bytes(n) {
    const sign = n < 0 ? '-' : '';
    let v = Math.abs(n), unit = 0;
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    while (v >= 1024 && unit < units.length - 1) { v /= 1024; unit += 1; }
    return `${sign}${unit ? v.toFixed(1) : v} ${units[unit]}`;
  }

  function packageList(title, cls, rows) {
    if (!rows.length) return null;
    return el('div', { class: 'diff-list' }, el('h3', { class: cls }, `${title} (${rows.length})`),
      el('ul', {}, ...rows.map((r) => el('li', {}, r))));
  }

  function showDiff(d) {
    const box = $('#diff');
    if (d.error) {
      box.replaceChildren(el('p', { class: 'bad' }, d.error));
      return;
    }
    if (d.unchanged) {
      box.replaceChildren(el('p', { class: 'ok' }, `${d.machine} already runs its new system: a deploy changes nothing.`));
      return;
    }
    const c = d.closure;
    const plus = (n) => (n > 0 ? `+${bytes(n)}` : bytes(n));
    const summary = `${d.machine}: ${d.changed.length} changed, ${d.added.length} added, ${d.removed.length} removed, ` +
      (d.rebootNeeded ? 'reboot needed' : 'no reboot');
    const boot = d.boot.map((b) => `${b.part} ${b.changed ? 'changes' : 'same'}`).join(', ');
    box.replaceChildren(
      el('p', { class: d.rebootNeeded ? 'warn' : '' }, summary),
      el('p', { class: 'muted' },
        `closure ${bytes(c.beforeBytes)} → ${bytes(c.afterBytes)} (${plus(c.deltaBytes)}), ` +
        `${c.beforePaths} → ${c.afterPaths} store paths (${c.pathsAdded} new, ${c.pathsRemoved} gone)`),
      el('p', {}, `boot: ${boot}${d.rebootReason ? ` — ${d.rebootReason}` : ''}`),
      ...[
        packageList('Changed', 'warn', d.changed.map((p) => `${p.name}: ${p.before.join(', ') || 'ø'} → ${p.after.join(', ') || 'ø'} (${plus(p.sizeDeltaBytes)})`)),
        packageList('Added', 'ok', d.added.map((p) => `${p.name} ${p.versions.join(', ')} (${bytes(p.sizeBytes)})`)),
        packageList('Removed', 'bad', d.removed.map((p) => `${p.name} ${p.versions.join(', ')} (${bytes(p.sizeBytes)})`)),
      ].filter(Boolean),
    );
  }

  // A diff shown is against the system the machine ran then: once it runs
  // another (a deploy happened), the diff is no longer what a deploy changes.
  function staleDiff() {
    const shown = state.diffOf;
    if (!shown) return;
    const now = state.byMachine.get(shown.machine);
    if (now && now.currentSystem && now.currentSystem !== shown.currentSystem) {
      state.diffOf = null;
      $('#diff').replaceChildren(el('p', { class: 'muted' },
        `${shown.machine} runs another system since: show the changes again to see what a deploy changes now.`));
    }
  }

  async function loadDiff(event) {
    if (event) event.preventDefault();
    const name = $('#diff-machine').value;
    if (!name) return;
    $('#diff-go').disabled = true;
    $('#diff-note').textContent = `building ${name}'s new system and reading the running one…`;
    try {
      const d = await getJson(`/api/diff/${encodeURIComponent(name)}`);
      showDiff(d);
      state.diffOf = d.error ? null : { machine: name, currentSystem: d.currentSystem };
      $('#diff-note').textContent = '';
    } catch (e) {
      $('#diff-note').textContent = '';
      $('#diff').replaceChildren(el('p', { class: 'bad' }, e.message));
    } finally {
      $('#diff-go').disabled = false;
    }
  }

  // ---- The dependency graph, coloured by each machine's status.

  async function loadGraph() {
    const box = $('#graph');
    try {
      const graph = await getJson('/api/graph');
      if (!graph.svg) {
        const waves = (graph.waves || []).map((w, i) => `wave ${i + 1}: ${w.join(', ')}`);
        box.replaceChildren(el('pre', {}, waves.join('\n') || 'no machines'));
        return;
      }
      const doc = new DOMParser().parseFromString(graph.svg, 'image/svg+xml');
      if (doc.querySelector('parsererror')) throw new Error('the graph is not valid SVG');
      box.replaceChildren(document.importNode(doc.documentElement, true));
      colourGraph();
    } catch (e) {
      box.replaceChildren(el('p', { class: 'bad' }, `cannot draw the graph: ${e.message}`));
    }
  }

  function colourGraph() {
    for (const node of document.querySelectorAll('#graph g.node')) {
      const s = state.byMachine.get(node.getAttribute('data-machine'));
      for (const c of ['ok', 'bad', 'warn', 'unknown']) node.classList.remove(`status-${c}`);
      if (s) node.classList.add(`status-${verdict(s)}`);
      node.classList.toggle('running', state.running.has(node.getAttribute('data-machine')));
    }
  }

  // ---- The run in progress, from the event stream.

  function liveRow(key, machine, what) {
    const body = $('#live tbody');
    let row = body.querySelector(`tr[data-step="${CSS.escape(key)}"]`);
    if (!row) {
      row = el('tr', { 'data-step': key, 'data-machine': machine },
        el('td', { class: 'machine' }, machine), el('td', { class: 'step' }, what), el('td', { class: 'state' }),
        el('td', { class: 'message' }));
      body.append(row);
    }
    return row;
  }

  // Keeps the newest step in view while the reader is at the bottom.
  function follow(action) {
    const box = $('#live-box');
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 30;
    action();
    if (atEnd) box.scrollTop = box.scrollHeight;
  }

  function setRow(row, stepState, message) {
    row.className = `state-${stepState}`;
    row.querySelector('.state').textContent = stepState;
    if (message !== undefined) row.querySelector('.message').textContent = message;
  }

  function onEvent(e) {
    follow(() => handle(e));
    colourGraph();
    // The run in progress, when it is the one whose timeline is shown,
    // redrawn as its steps end (at most once a second).
    if (e.event.startsWith('step-') && state.selected && state.selected === state.runId && !state.redraw) {
      state.redraw = setTimeout(() => {
        state.redraw = null;
        if (state.selected === state.runId) loadTimeline(state.runId);
      }, 1000);
    }
  }

  function handle(e) {
    const body = $('#live tbody');
    switch (e.event) {
      case 'run-started':
        state.runId = e.runId;
        state.running.clear();
        body.replaceChildren();
        $('#live-title').textContent = `${e.command} ${e.runId}${e.resumed ? ' (resumed)' : ''}`;
        $('#live-summary').textContent = `${e.machines} machines, ${e.steps} steps`;
        loadRuns(e.runId);
        break;
      case 'wave-started':
        body.append(el('tr', { class: 'wave' }, el('td', { colSpan: 4 }, `${e.phase} wave ${e.wave}: ${e.machines.join(', ')}`)));
        break;
      case 'step-started':
        state.running.add(e.machine);
        setRow(liveRow(e.step, e.machine, e.action), 'started', e.message);
        break;
      case 'step-finished':
        state.running.delete(e.machine);
        setRow(liveRow(e.step, e.machine, e.action), 'finished', e.message);
        break;
      case 'step-failed':
        state.running.delete(e.machine);
        setRow(liveRow(e.step, e.machine, e.action), 'failed', e.error);
        break;
      case 'skipped':
        setRow(liveRow(e.step, e.machine, e.step.split('/').pop()), 'skipped', e.reason);
        break;
      case 'rolled-back':
        state.running.delete(e.machine);
        setRow(liveRow(`${e.machine}/rollback`, e.machine, 'rollback'), 'rolled-back',
          `${e.reason}; runs ${e.system}${e.healthy ? ', healthy again' : ', NOT healthy'}`);
        break;
      case 'machine-healthy':
        setRow(liveRow(e.step, e.machine, e.step.split('/').pop()), 'finished', 'healthy');
        break;
      case 'notice':
        body.append(el('tr', { class: 'wave' }, el('td', { colSpan: 4 }, e.message)));
        break;
      case 'run-finished':
        state.running.clear();
        $('#live-title').textContent = `${$('#live-title').textContent} — ${e.outcome}`;
        $('#live-summary').textContent = e.summary;
        loadRuns(e.runId);
        break;
      default:
        break;
    }
  }

  // One message of a text/event-stream: its event name and data.
  function dispatch(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join('\n'));
    } catch (_) {
      return;
    }
    if (name === 'status') showStatus(payload);
    else if (name === 'message') onEvent(payload);
  }

  function setConn(up) {
    state.streamUp = up;
    const badge = $('#conn');
    badge.textContent = up ? 'live' : 'reconnecting';
    badge.className = `badge ${up ? 'live' : 'down'}`;
    // Without the stream, follow the status at the server's own pace.
    if (up && state.pollTimer) {
      clearInterval(state.pollTimer);
      state.pollTimer = null;
    } else if (!up && !state.pollTimer) {
      state.pollTimer = setInterval(loadStatus, 10000);
    }
  }

  // EventSource cannot send an Authorization header: the stream is read
  // with fetch() instead, and parsed here.
  async function stream() {
    let wait = 500;
    for (;;) {
      try {
        const res = await api('/api/events', { headers: { Accept: 'text/event-stream' } });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        // The server replays the run in progress on connect.
        $('#live tbody').replaceChildren();
        setConn(true);
        wait = 500;
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = (buffer + value).replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (_) {
        // Reconnect below.
      }
      setConn(false);
      await sleep(wait);
      wait = Math.min(wait * 2, 10000);
    }
  }

  // ---- Past runs, each as a timeline per machine.

  // What a run did, in a word (its argv also holds global flags and paths).
  const VERBS = ['deploy', 'reboot', 'orchestrate', 'resume'];
  function verb(command) {
    return (command || []).find((w) => VERBS.includes(w)) || (command || [])[0] || '?';
  }

  async function loadRuns(select) {
    let runs;
    try {
      runs = await getJson('/api/runs');
    } catch (e) {
      $('#runs').replaceChildren(el('li', { class: 'bad' }, `cannot list the runs: ${e.message}`));
      return;
    }
    const list = $('#runs');
    list.replaceChildren();
    for (const r of runs) {
      const outcome = r.outcome || (r.finishedMs ? '' : 'running');
      const cls = { success: 'ok', failed: 'bad', interrupted: 'warn', running: 'warn' }[outcome] || 'unknown';
      const li = el('li', { 'data-run': r.runId },
        el('div', {}, el('strong', {}, verb(r.command)), ' ', el('span', { class: cls }, outcome)),
        el('span', { class: 'cmd muted', title: (r.command || []).join(' ') }, (r.command || []).join(' ')),
        el('div', { class: 'id muted' }, r.runId));
      li.onclick = () => loadTimeline(r.runId);
      if (r.runId === state.selected) li.classList.add('selected');
      list.append(li);
    }
    if (!runs.length) list.append(el('li', { class: 'muted' }, 'no run yet'));
    const pick = select || state.selected || (runs[0] && runs[0].runId);
    if (pick) loadTimeline(pick);
  }

  async function loadTimeline(runId) {
    state.selected = runId;
    for (const li of document.querySelectorAll('#runs li')) {
      li.classList.toggle('selected', li.getAttribute('data-run') === runId);
    }
    const box = $('#timeline');
    try {
      const t = await getJson(`/api/runs/${encodeURIComponent(runId)}`);
      if (state.selected === runId) drawTimeline(box, t);
    } catch (e) {
      box.replaceChildren(el('p', { class: 'bad' }, `cannot read run ${runId}: ${e.message}`));
    }
  }

  function drawTimeline(box, t) {
    if (!t || !Array.isArray(t.machines)) {
      box.replaceChildren(el('p', { class: 'muted' }, 'This server does not send timelines.'));
      return;
    }
    const t0 = t.startedMs;
    const end = t.finishedMs || t.lastRecordMs || t0;
    const span = Math.max(end - t0, 1);
    const pct = (ms) => `${(100 * (ms - t0)) / span}%`;
    const outcome = t.outcome || (t.finishedMs ? '' : 'not finished');
    const head = el('div', { class: 'tl-head' },
      el('strong', {}, verb(t.command)), ` — ${outcome}, ${duration(span / 1000)} (${t.runId}, started ${clock(t0)})`,
      el('span', { class: 'cmd muted', title: (t.command || []).join(' ') }, (t.command || []).join(' ')));
    const path = el('div', { class: 'muted' }, `critical path: ${(t.criticalPath || []).join(' → ') || '-'}`);
    const lanes = [head, path];
    for (const m of t.machines) {
      const track = el('div', { class: 'track' });
      for (const s of m.segments) {
        const classes = ['seg', `phase-${s.phase}`];
        if (s.critical) classes.push('critical');
        if (s.state === 'failed' || s.state === 'rolled-back') classes.push('failed');
        if (s.state === 'started') classes.push('running');
        const what = s.step ? `${s.step}${s.rollback ? ' (rollback)' : ''} ${s.state}` : 'waiting';
        const title = `${what}: ${duration((s.endMs - s.startMs) / 1000)} from +${duration((s.startMs - t0) / 1000)}` +
          `${s.critical ? ' — critical path' : ''}${s.error ? `\n${s.error}` : ''}`;
        const seg = el('div', { class: classes.join(' '), title, 'data-step': s.step || '', 'data-phase': s.phase });
        seg.style.left = pct(s.startMs);
        seg.style.width = `${(100 * (s.endMs - s.startMs)) / span}%`;
        track.append(seg);
      }
      lanes.push(el('div', { class: 'lane', 'data-machine': m.machine }, el('div', { class: 'name', title: m.machine }, m.machine), track));
      if (m.skipped && m.skipped.length) {
        lanes.push(el('div', { class: 'skipped' }, `skipped: ${m.skipped.map((s) => `${s.step} (${s.reason})`).join('; ')}`));
      }
    }
    const ticks = el('div', { class: 'ticks' });
    for (let i = 0; i <= 4; i++) ticks.append(el('span', {}, `+${duration((span * i) / 4 / 1000)}`));
    lanes.push(el('div', { class: 'axis' }, el('span', {}), ticks));
    box.replaceChildren(...lanes);
  }

  // ---- Start.

  async function start() {
    setConn(false);
    $('#diff-form').addEventListener('submit', loadDiff);
    await loadStatus();
    loadGraph();
    loadRuns();
    stream();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
