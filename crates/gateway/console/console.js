// Switchboard operator console: one static file, no framework, no build step.
// Server data (customer text above all) is untrusted: it only ever reaches the page
// through textContent / DOM nodes, never through innerHTML.
'use strict';

(() => {
  const API = '/api/v1';
  // Messages per page of a conversation's transcript; older pages load on demand.
  const PAGE = 200;
  const $ = (id) => document.getElementById(id);

  const state = {
    me: null,
    route: { name: 'inbox', id: null },
    conversations: [], // the inbox as last shown: j/k walk this order
    convId: null, // conversation whose transcript is on screen
    draft: null, // pending suggestion on screen
    draftOriginal: '', // its text as received, to tell whether the operator has edited it
    events: null,
    reconnectDelay: 3000,
    settings: null,
  };

  // ---------------------------------------------------------------- helpers

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
      this.handled = false; // set when the 401 handler already showed the login form
    }
  }

  // Builds an element; strings become text nodes, so nothing is parsed as HTML.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  // replaceChildren would print a null as the text "null".
  function fill(el, ...nodes) {
    el.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  }

  const enc = encodeURIComponent;
  const convHref = (id) => '#/conversations/' + enc(id);

  function readCookie(name) {
    for (const part of document.cookie.split(';')) {
      const i = part.indexOf('=');
      if (i > 0 && part.slice(0, i).trim() === name) {
        try {
          return decodeURIComponent(part.slice(i + 1).trim());
        } catch {
          return part.slice(i + 1).trim();
        }
      }
    }
    return null;
  }

  // The cookie first: it is replaced together with the session cookie, so it stays right when
  // another tab signs in again; this tab's sessionStorage copy would then be stale.
  const csrfToken = () => readCookie('sb_csrf') || sessionStorage.getItem('sb_csrf') || '';

  async function api(method, path, body, opts = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET') {
      const t = csrfToken();
      if (t) headers['X-CSRF-Token'] = t;
    }
    let res;
    try {
      res = await fetch(API + path, {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'The gateway could not be reached. Check your connection and try again.');
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (res.ok) return data;
    const reason =
      (data && typeof data.error === 'string' && data.error) ||
      text.trim().slice(0, 300) ||
      `${res.status} ${res.statusText}`;
    const err = new ApiError(res.status, reason);
    if (res.status === 401 && !opts.login) {
      sessionEnded(opts.quiet);
      err.handled = true;
    }
    throw err;
  }

  function fmtTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const sameDay = d.toDateString() === new Date().toDateString();
    return sameDay
      ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  function timeEl(iso) {
    if (!iso) return null;
    const d = new Date(iso);
    return h('time', { datetime: iso, title: Number.isNaN(d.getTime()) ? iso : d.toLocaleString() }, fmtTime(iso));
  }

  const isFuture = (iso) => !!iso && new Date(iso).getTime() > Date.now();
  const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(2) : x ?? '—');
  const humanize = (key) => String(key).replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
  const canAct = () => !!state.me && state.me.role !== 'viewer';
  const isAdmin = () => !!state.me && ['admin', 'owner'].includes(state.me.role);

  // ------------------------------------------------------ error and notice

  let errorTimer = null;
  let noticeTimer = null;

  function showError(msg) {
    $('error-text').textContent = msg;
    $('error').hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(hideError, 20000);
  }

  function hideError() {
    $('error').hidden = true;
  }

  function showNotice(msg) {
    const n = $('notice');
    n.textContent = msg;
    n.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => {
      n.hidden = true;
    }, 8000);
  }

  function report(e) {
    if (e instanceof ApiError && e.handled) return;
    if (!(e instanceof ApiError)) console.error(e); // a bug, not a refusal the operator can read
    showError(e && e.message ? e.message : String(e));
  }

  // Disables the buttons while a request runs, so a double click cannot send twice.
  async function busy(buttons, fn) {
    const list = buttons.filter(Boolean);
    list.forEach((b) => (b.disabled = true));
    try {
      return await fn();
    } catch (e) {
      report(e);
      return undefined;
    } finally {
      list.forEach((b) => (b.disabled = false));
    }
  }

  // ------------------------------------------------------- session / login

  function showOnly(viewId) {
    for (const v of document.querySelectorAll('.view')) v.hidden = v.id !== viewId;
  }

  function showLogin() {
    $('topbar').hidden = true;
    showOnly('login-view');
    $('login-email').focus();
  }

  function sessionEnded(quiet) {
    const wasIn = !!state.me;
    state.me = null;
    stopEvents();
    sessionStorage.removeItem('sb_csrf');
    showLogin();
    if (wasIn && !quiet) showError('Your session has ended. Please sign in again.');
  }

  function startSession(user) {
    state.me = user;
    document.body.classList.toggle('readonly', user.role === 'viewer');
    $('me-label').textContent = `${user.email} (${user.role})`;
    $('topbar').hidden = false;
    startEvents();
    if (!location.hash || location.hash === '#' || location.hash === '#/') {
      history.replaceState(null, '', '#/inbox');
    }
    onRoute();
  }

  $('login-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const email = $('login-email').value.trim();
    const password = $('login-password').value;
    if (!email || !password) {
      showError('Enter your email and password.');
      return;
    }
    await busy([$('login-submit')], async () => {
      const tenant = $('login-tenant').value.trim();
      const body = tenant ? { email, password, tenant } : { email, password };
      const r = await api('POST', '/auth/login', body, { login: true });
      if (r && r.csrf_token) sessionStorage.setItem('sb_csrf', r.csrf_token);
      $('login-password').value = '';
      hideError();
      startSession((r && r.user) || (await api('GET', '/me')));
    });
  });

  $('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/auth/logout', {});
    } catch (e) {
      if (!(e instanceof ApiError && e.handled)) report(e);
    }
    state.me = null;
    state.convId = null;
    state.draft = null;
    stopEvents();
    sessionStorage.removeItem('sb_csrf');
    showLogin();
  });

  $('error-close').addEventListener('click', hideError);

  // ------------------------------------------------------------ routing

  function parseRoute() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean);
    let p0 = parts[0] || 'inbox';
    if (p0 === 'conversations' && parts[1]) {
      try {
        return { name: 'conversation', id: decodeURIComponent(parts[1]) };
      } catch {
        return { name: 'inbox', id: null };
      }
    }
    if (!['inbox', 'escalations', 'shop', 'settings', 'users', 'dead-letters'].includes(p0)) p0 = 'inbox';
    return { name: p0, id: null };
  }

  function onRoute() {
    if (!state.me) return;
    const r = parseRoute();
    state.route = r;
    const nav = r.name === 'conversation' ? 'inbox' : r.name;
    for (const a of document.querySelectorAll('[data-nav]')) {
      if (a.dataset.nav === nav) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const run = (p) => p.catch(report);
    switch (r.name) {
      case 'conversation':
        showOnly('inbox-view');
        $('inbox-view').classList.add('has-conv');
        run(loadInbox());
        run(loadConversation(r.id));
        break;
      case 'escalations':
        showOnly('escalations-view');
        run(loadEscalations());
        break;
      case 'shop':
        showOnly('shop-view');
        run(loadShop());
        break;
      case 'settings':
        showOnly('settings-view');
        run(loadSettings());
        break;
      case 'users':
        showOnly('users-view');
        run(loadUsers());
        break;
      case 'dead-letters':
        showOnly('dead-letters-view');
        run(loadDeadLetters());
        break;
      default:
        showOnly('inbox-view');
        $('inbox-view').classList.remove('has-conv');
        closeConversation();
        run(loadInbox());
    }
  }

  window.addEventListener('hashchange', () => {
    hideError(); // an error belongs to the page it happened on
    onRoute();
  });

  // ------------------------------------------------------------- inbox

  let inboxSeq = 0;

  async function loadInbox() {
    const seq = ++inboxSeq;
    const params = new URLSearchParams();
    // Empty filters are left out rather than sent empty, so "all" never means "status = ''".
    for (const [key, id] of [['status', 'filter-status'], ['channel', 'filter-channel'], ['q', 'filter-q']]) {
      const v = $(id).value.trim();
      if (v) params.set(key, v);
    }
    const qs = params.toString();
    const data = await api('GET', '/conversations' + (qs ? '?' + qs : ''));
    if (seq !== inboxSeq) return; // a newer request (filter change, live event) won
    state.conversations = (data && data.conversations) || [];
    renderInbox();
  }

  function customerName(c) {
    const cu = c.customer || {};
    return cu.name || cu.external_id || 'Customer';
  }

  function roleLabel(role) {
    return { customer: 'Customer', assistant: 'Bot', operator: 'Operator', system: 'System' }[role] || role;
  }

  function renderInbox() {
    const list = $('inbox-list');
    const rows = state.conversations.map((c) => {
      const last = c.last_message;
      const preview = last
        ? (last.role === 'customer' ? '' : roleLabel(last.role) + ': ') + (last.text || '')
        : 'No messages yet';
      const tags = [
        h('span', { class: 'badge' }, c.channel_name || c.channel_kind || 'channel'),
        c.status ? h('span', { class: 'badge ' + c.status }, humanize(c.status)) : null,
        c.pending_suggestions > 0 ? h('span', { class: 'badge draft' }, 'Draft waiting') : null,
        isFuture(c.takeover_until) ? h('span', { class: 'badge' }, 'Taken over') : null,
        c.assigned_user_id && state.me && c.assigned_user_id === state.me.id
          ? h('span', { class: 'badge' }, 'Yours')
          : null,
      ];
      const unread = c.unread_count > 0
        ? h('span', { class: 'badge unread', 'aria-label': `${c.unread_count} unread` }, String(c.unread_count))
        : null;
      const a = h(
        'a',
        {
          class: 'conv-row',
          href: convHref(c.id),
          'data-conversation-id': c.id,
          'data-draft-waiting': c.pending_suggestions > 0 ? 'true' : null,
          'aria-current': c.id === state.route.id ? 'true' : null,
        },
        h('span', { class: 'name' }, customerName(c)),
        h('span', { class: 'when' }, timeEl((last && last.at) || c.updated_at), ' ', unread),
        h('span', { class: 'preview' }, preview),
        h('span', { class: 'tags' }, tags),
      );
      return h('li', null, a);
    });
    list.replaceChildren(...rows);
    $('inbox-empty').hidden = rows.length > 0;
  }

  function markCurrentRow() {
    for (const a of document.querySelectorAll('#inbox-list [data-conversation-id]')) {
      if (a.getAttribute('data-conversation-id') === state.route.id) {
        a.setAttribute('aria-current', 'true');
        a.scrollIntoView({ block: 'nearest' });
      } else {
        a.removeAttribute('aria-current');
      }
    }
  }

  let searchTimer = null;
  $('filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('filter-status').addEventListener('change', () => loadInbox().catch(report));
  $('filter-channel').addEventListener('change', () => loadInbox().catch(report));
  $('filter-q').addEventListener('input', () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadInbox().catch(report), 300);
  });

  // ------------------------------------------------------- conversation

  let convSeq = 0;

  function closeConversation() {
    state.convId = null;
    state.draft = null;
    $('conv').hidden = true;
    $('conv-placeholder').hidden = false;
  }

  // Pages of older messages the operator loaded for the open conversation, oldest first,
  // kept across the refreshes live events cause; `before` is the cursor of the next page.
  let older = { convId: null, messages: [], before: null };

  async function loadConversation(id) {
    const seq = ++convSeq;
    const [conv, msgs] = await Promise.all([
      api('GET', `/conversations/${enc(id)}`),
      // The newest page; older ones come with "Load older messages".
      api('GET', `/conversations/${enc(id)}/messages?limit=${PAGE}`),
    ]);
    if (seq !== convSeq || state.route.id !== id) return; // the operator moved on meanwhile
    const latest = (msgs && msgs.messages) || [];
    if (older.convId !== id) older = { convId: id, messages: [], before: (msgs && msgs.before) || null };
    else if (!older.messages.length) older.before = (msgs && msgs.before) || null;
    older.latest = latest;
    renderConversation(conv, withOlder(latest));
  }

  function withOlder(latest) {
    const seen = new Set(latest.map((m) => m.id));
    return older.messages.filter((m) => !seen.has(m.id)).concat(latest);
  }

  async function loadOlder() {
    const id = older.convId;
    if (!id || !older.before) return;
    const page = await api('GET', `/conversations/${enc(id)}/messages?limit=${PAGE}&before=${enc(older.before)}`);
    if (!page || older.convId !== id || state.convId !== id) return;
    // The newest page shown so far is kept with the older ones: as new messages push the
    // newest page forward, none falls between it and them.
    older.messages = (page.messages || []).concat(withOlder(older.latest || []));
    older.before = page.before || null;
    await loadConversation(id);
  }

  function renderConversation(conv, messages) {
    const fresh = state.convId !== conv.id;
    if (fresh) {
      $('reply-text').value = '';
      state.draft = null;
      state.draftOriginal = '';
    }
    state.convId = conv.id;
    $('conv-placeholder').hidden = true;
    $('conv').hidden = false;
    markCurrentRow();

    $('conv-title').textContent = customerName(conv);
    const cu = conv.customer || {};
    fill($('conv-meta'),
      [conv.channel_name, conv.channel_kind].filter(Boolean).join(' · '),
      cu.external_id && cu.name ? ` · ${cu.external_id}` : '',
      conv.updated_at ? ' · updated ' : '',
      timeEl(conv.updated_at),
    );
    fill($('conv-badges'),
      h('span', { class: 'badge ' + (conv.status || '') }, humanize(conv.status || 'unknown')),
      h('span', { class: 'badge', title: 'How much the bot may do on its own' }, 'Mode: ' + (conv.mode || '—')),
    );
    // Only the moves the lifecycle allows now (the server says which).
    const allowed = new Set(conv.actions || []);
    for (const b of document.querySelectorAll('.conv-actions [data-action]')) {
      b.hidden = !allowed.has(b.dataset.action);
    }
    const takeover = $('conv-takeover');
    if (isFuture(conv.takeover_until)) {
      fill(takeover, 'An operator has taken over until ', timeEl(conv.takeover_until), ': the bot stays quiet.');
      takeover.hidden = false;
    } else {
      takeover.hidden = true;
    }

    renderLead(cu.lead || {}, fresh);
    renderTranscript(messages, fresh);
    renderDraft(conv.pending_suggestion || null);
  }

  const LEAD_FIELDS = ['name', 'email', 'phone', 'company', 'interest'];

  // The lead's fields, refilled on a fresh conversation or when no field is being edited,
  // so a live update does not overwrite what an operator is typing.
  function renderLead(lead, fresh) {
    const form = $('lead-form');
    const given = LEAD_FIELDS.filter((f) => lead[f]);
    $('lead-summary').textContent = given.length
      ? `Contact details: ${given.map((f) => lead[f]).slice(0, 3).join(' · ')}`
      : 'Contact details: none given';
    if (!fresh && form.contains(document.activeElement)) return;
    state.lead = lead;
    for (const f of LEAD_FIELDS) form.elements[f].value = lead[f] || '';
  }

  $('lead-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const form = ev.target;
    const id = state.convId;
    busy([form.querySelector('button')], async () => {
      // Only what the operator changed: a field sent is a field corrected for good.
      const body = {};
      for (const f of LEAD_FIELDS) {
        const v = form.elements[f].value.trim();
        if (v !== ((state.lead || {})[f] || '')) body[f] = v || null;
      }
      if (!Object.keys(body).length) return;
      const lead = await api('PATCH', `/conversations/${enc(id)}/lead`, body);
      if (lead && state.convId === id) renderLead(lead, true);
      showNotice('Contact details saved.');
    });
  });

  function attachmentLabel(f) {
    if (!f || typeof f !== 'object') return String(f);
    return String(f.filename || f.file_name || f.name || f.mime_type || f.kind || f.type || 'file');
  }

  function renderTranscript(messages, fresh) {
    const box = $('transcript');
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const fromBottom = box.scrollHeight - box.scrollTop;
    const items = messages.map((m) => {
      const meta = [
        h('strong', null, roleLabel(m.role)),
        timeEl(m.at),
        m.role === 'assistant' && m.decision
          ? h('span', { class: 'badge ' + m.decision, title: 'How the bot decided' }, m.decision)
          : null,
        m.delivery_status && !['sent', 'delivered', 'read'].includes(m.delivery_status)
          ? h('span', { class: /fail|dead|error/i.test(m.delivery_status) ? 'failed' : '' }, m.delivery_status)
          : null,
      ];
      const files = Array.isArray(m.attachments) ? m.attachments : [];
      return h(
        'li',
        { class: 'msg ' + (m.role || 'system'), 'data-message-id': m.id },
        h('div', { class: 'meta' }, meta),
        h('div', { class: 'body' }, m.text || ''),
        files.length
          ? h('div', { class: 'meta' }, 'Attachments: ', files.map(attachmentLabel).join(', '))
          : null,
        Array.isArray(m.choices) && m.choices.length
          ? h('div', { class: 'meta' }, 'Offered: ', m.choices.join(' · '))
          : null,
      );
    });
    box.replaceChildren(...items);
    if (older.before) {
      box.prepend(h('li', { class: 'older' },
        h('button', { type: 'button', id: 'load-older', onclick: () => loadOlder() }, 'Load older messages')));
    }
    if (!items.length) box.append(h('li', { class: 'muted' }, 'No messages yet.'));
    // Keep the operator's reading position unless they were following the latest messages
    // (measured from the bottom, so older messages added above do not move what they read).
    if (fresh || nearBottom) box.scrollTop = box.scrollHeight;
    else box.scrollTop = box.scrollHeight - fromBottom;
  }

  function renderDraft(s) {
    const panel = $('draft-panel');
    const area = $('draft-text');
    const edited = state.draft && area.value !== state.draftOriginal;
    if (!s) {
      if (edited) keepLostEdit(area.value);
      state.draft = null;
      panel.hidden = true;
      return;
    }
    // An escalation is not a draft to approve: the customer needs a person. Its suggested
    // text may start the operator's answer, on request, and nothing sends it with one key.
    const escalated = s.decision === 'ESCALATE';
    if (!state.draft || state.draft.id !== s.id) {
      // A live refresh must never overwrite what the operator is typing, so a replaced
      // draft's edit moves to the reply box instead of disappearing.
      if (edited) keepLostEdit(area.value);
      area.value = escalated ? '' : s.draft || '';
      state.draftOriginal = area.value;
    }
    state.draft = s;
    area.readOnly = !canAct();
    area.placeholder = escalated ? 'Write your answer to the customer…' : '';
    $('draft-title').textContent = escalated ? 'Escalated: this customer needs a person' : 'Draft waiting for approval';
    $('trace-title').textContent = escalated ? 'Why it was escalated' : 'Why it was not sent automatically';
    $('approve').hidden = escalated;
    $('reject').hidden = escalated;
    $('use-suggestion').hidden = !escalated || !s.draft;
    $('edit-send').textContent = escalated ? 'Send my answer' : 'Edit & send';
    panel.hidden = false;
    fill($('draft-context'),
      'Intent: ',
      h('strong', null, s.intent || '—'),
      ` · confidence ${num(s.confidence)}`,
      s.expires_at ? ' · expires ' : '',
      timeEl(s.expires_at),
    );
    fill($('trace'), traceNodes(s));
  }

  function keepLostEdit(text) {
    const reply = $('reply-text');
    if (!reply.value.trim()) reply.value = text;
    const msg = 'The draft you were editing was replaced or sent by someone else; your text is in the reply box.';
    // Appends rather than replaces, so the server's reason (e.g. a 409) stays readable.
    showError($('error').hidden ? msg : `${$('error-text').textContent} ${msg}`);
  }

  const BLOCK_REASONS = {
    FLAG_OFF: 'automatic sending is switched off by a feature flag',
    SETTING_OFF: 'automatic sending is switched off in the decision settings',
    MODE_LEARNING: 'the conversation is in learning mode: every reply needs approval',
    INTENT_NOT_ALLOWED: 'this intent is not on the auto-send list',
    WINDOW_CLOSED: "the channel's reply window is closed",
    NIGHT_MODE: 'it is outside working hours (night mode)',
  };

  // Sources, penalties and conflicts are free-form JSON: show the familiar fields in words,
  // anything else as indented JSON rather than dropping it.
  function describe(v) {
    if (v === null || v === undefined) return '—';
    if (typeof v !== 'object') return String(v);
    const name = v.title || v.name || v.code || v.field || v.id;
    const amount = v.amount ?? v.value ?? v.score;
    const extra = v.message || v.reason || v.detail || v.url || v.source;
    if (name !== undefined && typeof name !== 'object') {
      let s = String(name);
      if (typeof amount === 'number') s += ` (${amount.toFixed(2)})`;
      if (extra && typeof extra !== 'object') s += ` — ${extra}`;
      return s;
    }
    return h('pre', { class: 'json' }, JSON.stringify(v, null, 2));
  }

  function list(items) {
    return h('ul', null, items.map((x) => h('li', null, describe(x))));
  }

  function traceNodes(s) {
    const out = [];
    const rows = [
      ['Decision', s.decision ? h('span', { class: 'badge ' + s.decision }, s.decision) : '—'],
      ['Confidence', num(s.confidence)],
      ['Similarity', num(s.similarity_score)],
      ['Intent score', num(s.intent_score)],
      ['Self-check', num(s.self_check_score)],
      ['Auto-send eligible', s.autosend_eligible ? 'yes' : 'no'],
    ];
    if (s.provider) rows.push(['Drafted by', s.provider]);
    if (s.autosend_block_reason) {
      const why = BLOCK_REASONS[s.autosend_block_reason];
      rows.push(['Blocked because', why ? `${why} (${s.autosend_block_reason})` : s.autosend_block_reason]);
    }
    out.push(h('dl', null, rows.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])));
    const section = (title, items) => {
      if (Array.isArray(items) && items.length) out.push(h('h4', null, title), list(items));
    };
    section('Explanations', s.explanations);
    section('Penalties', s.penalties);
    // Sources by title; a source deleted since shows its reference.
    section('Sources used', (s.sources || []).map((x) => x.title || x.reference));
    if (Array.isArray(s.used_sources) && !s.used_sources.length) {
      out.push(h('h4', null, 'Sources used'), h('p', { class: 'muted' }, 'None: the draft is not backed by the knowledge base.'));
    }
    section('Missing information', s.missing_fields);
    section('Conflicting sources', s.source_conflicts);
    section('Other choices', s.choices);
    if (s.customer_text) out.push(h('h4', null, 'In reply to'), h('p', null, s.customer_text));
    return out;
  }

  async function approveDraft(withEdit) {
    const s = state.draft;
    if (!s || !canAct()) return;
    let body = {};
    if (!withEdit && $('draft-text').value !== state.draftOriginal &&
        !window.confirm('You edited the draft. Approve sends the original text, not your edit. Send the original?')) {
      return;
    }
    if (withEdit) {
      const text = $('draft-text').value.trim();
      if (!text) {
        showError(s.decision === 'ESCALATE' ? 'Write your answer first.' : 'The reply is empty. Write something or reject the draft.');
        return;
      }
      body = { text };
    }
    await busy([$('approve'), $('edit-send'), $('reject')], async () => {
      try {
        await api('POST', `/suggestions/${enc(s.id)}/approve`, body);
      } catch (e) {
        if (e.status === 409) refreshOpen(); // superseded or expired: show what is current
        throw e;
      }
      state.draft = null; // so the refresh does not treat the sent text as a lost edit
      showNotice(withEdit ? 'Sent: your edited reply is on its way.' : 'Sent: the draft was approved.');
      await refreshOpen();
    });
  }

  async function rejectDraft() {
    const s = state.draft;
    if (!s || !canAct()) return;
    const reason = window.prompt('Why reject this draft? The reason helps the assistant learn.', '');
    if (reason === null) return;
    await busy([$('approve'), $('edit-send'), $('reject')], async () => {
      try {
        await api('POST', `/suggestions/${enc(s.id)}/reject`, { reason: reason.trim() });
      } catch (e) {
        if (e.status === 409) refreshOpen();
        throw e;
      }
      state.draft = null;
      showNotice('Rejected: the draft will not be sent.');
      await refreshOpen();
    });
  }

  $('approve').addEventListener('click', () => approveDraft(false));
  $('edit-send').addEventListener('click', () => approveDraft(true));
  $('use-suggestion').addEventListener('click', () => {
    const area = $('draft-text');
    if (state.draft && !area.value.trim()) area.value = state.draft.draft || '';
    area.focus();
  });
  $('reject').addEventListener('click', rejectDraft);

  async function sendReply() {
    const id = state.convId;
    const text = $('reply-text').value.trim();
    if (!id || !canAct()) return;
    if (!text) {
      showError('Write a reply first.');
      return;
    }
    await busy([$('reply-send')], async () => {
      await api('POST', `/conversations/${enc(id)}/messages`, { text });
      if (state.convId === id) $('reply-text').value = '';
      showNotice('Sent: you have taken over this conversation, the bot stays quiet.');
      await refreshOpen();
    });
  }

  $('reply-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendReply();
  });

  const ACTION_DONE = {
    takeover: 'Taken over: the bot stays quiet.',
    release: 'Released: the bot may answer again.',
    resolve: 'Resolved.',
    close: 'Closed.',
    reopen: 'Reopened.',
  };

  for (const b of document.querySelectorAll('.conv-actions [data-action]')) {
    b.addEventListener('click', async () => {
      const id = state.convId;
      const action = b.dataset.action;
      if (!id || !canAct()) return;
      await busy([...document.querySelectorAll('.conv-actions button')], async () => {
        await api('POST', `/conversations/${enc(id)}/${action}`, {});
        showNotice(ACTION_DONE[action] || 'Done.');
        await refreshOpen();
      });
    });
  }

  async function refreshOpen() {
    const jobs = [loadInbox()];
    if (state.route.name === 'conversation' && state.route.id) jobs.push(loadConversation(state.route.id));
    await Promise.all(jobs.map((p) => p.catch(report)));
  }

  // --------------------------------------------------------- escalations

  async function loadEscalations() {
    const status = $('esc-status').value;
    const data = await api('GET', '/escalations' + (status ? '?status=' + enc(status) : ''));
    const items = ((data && data.escalations) || []).map((e) => {
      const buttons = [];
      if (e.status === 'pending' || !e.status) {
        const handle = h('button', { type: 'button', class: 'act primary' }, 'Handle');
        const dismiss = h('button', { type: 'button', class: 'act' }, 'Dismiss');
        const run = (verb, done) => () =>
          busy([handle, dismiss], async () => {
            await api('POST', `/escalations/${enc(e.id)}/${verb}`, {});
            showNotice(done);
            await loadEscalations();
          });
        handle.addEventListener('click', run('handle', 'Escalation marked as handled.'));
        dismiss.addEventListener('click', run('dismiss', 'Escalation dismissed.'));
        buttons.push(handle, dismiss);
      }
      return h(
        'li',
        { class: 'card', 'data-escalation-id': e.id },
        h('div', { class: 'row' },
          h('span', { class: 'badge ' + (e.status || '') }, humanize(e.status || 'pending')),
          h('strong', null, e.reason || 'Escalated'),
          h('span', { class: 'muted small' }, timeEl(e.created_at))),
        e.summary ? h('p', { class: 'text' }, e.summary) : null,
        e.suggested_response
          ? h('p', { class: 'text muted' }, 'Suggested answer: ', e.suggested_response)
          : null,
        e.notify_count > 0 ? h('p', { class: 'muted small' }, `Operators reminded ${e.notify_count} time${e.notify_count === 1 ? '' : 's'}.`) : null,
        e.handled_at
          ? h('p', { class: 'muted small' },
            `${humanize(e.status || 'closed')} by ${state.me && e.handled_by === state.me.id ? 'you' : 'an operator'} `,
            timeEl(e.handled_at))
          : null,
        h('div', { class: 'actions' }, h('a', { href: convHref(e.conversation_id) }, 'Open conversation'), buttons),
      );
    });
    $('esc-list').replaceChildren(...items);
    $('esc-empty').hidden = items.length > 0;
  }

  $('esc-status').addEventListener('change', () => loadEscalations().catch(report));

  // -------------------------------------------------------- dead letters

  async function loadDeadLetters() {
    const data = await api('GET', '/dead-letters');
    const items = ((data && data.dead_letters) || []).map((d) => {
      const replay = h('button', { type: 'button', class: 'act primary' }, 'Replay');
      replay.addEventListener('click', () =>
        busy([replay], async () => {
          await api('POST', `/dead-letters/${enc(d.id)}/replay`, {});
          showNotice('Replay queued: the reply will be sent again.');
          await loadDeadLetters();
        }));
      return h(
        'li',
        { class: 'card', 'data-dead-letter-id': d.id },
        h('div', { class: 'row' },
          h('span', { class: 'badge' }, d.channel_kind || 'channel'),
          h('span', { class: 'badge' }, d.status || ''),
          h('span', { class: 'muted small' }, `${d.attempts ?? 0} attempts · `, timeEl(d.created_at))),
        h('p', { class: 'text' }, d.text || ''),
        d.last_error ? h('p', { class: 'text small failed' }, 'Last error: ', d.last_error) : null,
        h('div', { class: 'actions' },
          d.conversation_id ? h('a', { href: convHref(d.conversation_id) }, 'Open conversation') : null,
          replay),
      );
    });
    $('dl-list').replaceChildren(...items);
    $('dl-empty').hidden = items.length > 0;
    // Inbound jobs the workers gave up on: ids and reasons only. The queue is shared by
    // every shop, so the platform admin replays them (`switchboard dlq replay --inbound`).
    const inbound = ((data && data.inbound) || []).map((d) => h(
      'li',
      { class: 'card', 'data-dead-inbound': '' },
      h('div', { class: 'row' },
        ...(d.jobs || []).map((j) => h('span', { class: 'badge' }, j.kind || 'job')),
        h('span', { class: 'muted small' }, `${d.attempt ?? 0} retries`)),
      h('p', { class: 'text small failed' }, 'Reason: ', d.reason || 'unknown'),
      h('p', { class: 'muted small' }, 'Trace: ', (d.jobs || []).map((j) => j.trace_id || '?').join(', ')),
    ));
    $('dl-inbound-list').replaceChildren(...inbound);
    $('dl-inbound-empty').hidden = inbound.length > 0;
    $('dl-inbound-error').hidden = !(data && data.inbound_error);
    $('dl-inbound-error').textContent = (data && data.inbound_error) || '';
  }

  // ---------------------------------------------------------------- shop

  async function loadShop() {
    const [products, docs] = await Promise.all([api('GET', '/products'), api('GET', '/documents')]);
    renderProducts(products || []);
    renderDocs(docs || []);
    $('doc-add').hidden = !isAdmin();
  }

  $('doc-add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const button = ev.target.querySelector('button');
    busy([button], async () => {
      const title = $('new-doc-title').value.trim();
      await api('POST', '/documents', { title, body: $('new-doc-body').value });
      $('new-doc-title').value = '';
      $('new-doc-body').value = '';
      showNotice(`Added "${title}".`);
      await loadShop();
    });
  });

  function renderProducts(products) {
    const filter = $('product-filter').value.trim().toLowerCase();
    const shown = products.filter((p) => !filter || `${p.sku} ${p.name}`.toLowerCase().includes(filter));
    $('product-rows').replaceChildren(...shown.map((p) => productRow(p, products)));
    $('products-empty').hidden = products.length > 0;
    $('product-filter').oninput = () => renderProducts(products);
  }

  function productRow(p, all) {
    const cells = [
      h('td', null, h('code', null, p.sku)),
      h('td', null, p.name),
      h('td', null, `${p.price} ${p.currency}`),
      h('td', null, String(p.stock)),
    ];
    const edit = h('button', { type: 'button', class: 'small' }, 'Edit');
    const row = h('tr', { 'data-sku': p.sku }, cells, h('td', null, isAdmin() ? edit : null));
    edit.addEventListener('click', () => row.replaceWith(productEditor(p, all)));
    return row;
  }

  // An admin's edit of one product: the whole product is written back (PUT), so the
  // attributes and currency it had stay as they were.
  function productEditor(p, all) {
    const input = (name, value, type = 'text') =>
      h('input', { type, name, 'aria-label': humanize(name), value: String(value ?? ''), step: type === 'number' ? 'any' : null });
    const name = input('name', p.name);
    const price = input('price', p.price, 'number');
    const stock = input('stock', p.stock, 'number');
    const save = h('button', { type: 'button', class: 'primary small' }, 'Save');
    const cancel = h('button', { type: 'button', class: 'small' }, 'Cancel');
    const del = h('button', { type: 'button', class: 'danger small' }, 'Delete');
    const row = h('tr', { 'data-sku': p.sku, class: 'editing' },
      h('td', null, h('code', null, p.sku)), h('td', null, name), h('td', null, price),
      h('td', null, stock), h('td', null, save, cancel, del));
    cancel.addEventListener('click', () => row.replaceWith(productRow(p, all)));
    del.addEventListener('click', () => busy([save, del], async () => {
      if (!window.confirm(`Delete ${p.sku}? Customers' questions will no longer find it.`)) return;
      await api('DELETE', `/products/${enc(p.sku)}`);
      const i = all.findIndex((x) => x.sku === p.sku);
      if (i >= 0) all.splice(i, 1);
      row.remove();
      showNotice(`Deleted ${p.sku}.`);
    }));
    save.addEventListener('click', () => busy([save], async () => {
      const body = {
        name: name.value.trim(), description: p.description, price: price.value.trim(),
        currency: p.currency, stock: Number(stock.value), attributes: p.attributes || {},
      };
      const saved = await api('PUT', `/products/${enc(p.sku)}`, body);
      const i = all.findIndex((x) => x.sku === p.sku);
      if (i >= 0 && saved) all[i] = saved;
      row.replaceWith(productRow(saved || p, all));
      showNotice(`Saved ${p.sku}.`);
    }));
    return row;
  }

  function renderDocs(docs) {
    const items = docs.map((d) => {
      const open = h('button', { type: 'button', class: 'small' }, 'Show');
      const li = h('li', { class: 'card', 'data-doc-id': d.id },
        h('div', { class: 'row' }, h('strong', null, d.title),
          h('span', { class: 'muted small' }, ` ${d.source || 'written here'} · ${d.chars} characters`)),
        h('div', { class: 'actions' }, open));
      open.addEventListener('click', async () => {
        const full = await api('GET', `/documents/${enc(d.id)}`);
        if (full) li.replaceWith(docCard(full, docs));
      });
      return li;
    });
    $('doc-list').replaceChildren(...items);
    $('docs-empty').hidden = items.length > 0;
  }

  function docCard(d, docs) {
    const title = h('input', { type: 'text', value: d.title, 'aria-label': 'Title', readonly: isAdmin() ? null : 'readonly' });
    const body = h('textarea', { rows: 6, 'aria-label': 'Text', readonly: isAdmin() ? null : 'readonly' });
    body.value = d.body;
    const save = h('button', { type: 'button', class: 'primary small' }, 'Save');
    const del = h('button', { type: 'button', class: 'danger small' }, 'Delete');
    save.addEventListener('click', () => busy([save, del], async () => {
      await api('PUT', `/documents/${enc(d.id)}`, { title: title.value, keywords: d.keywords || '', body: body.value });
      showNotice('Saved.');
    }));
    del.addEventListener('click', () => busy([save, del], async () => {
      if (!window.confirm(`Delete "${d.title}"? Customers' questions will no longer find it.`)) return;
      await api('DELETE', `/documents/${enc(d.id)}`);
      showNotice('Deleted.');
      renderDocs(docs.filter((x) => x.id !== d.id));
    }));
    return h('li', { class: 'card', 'data-doc-id': d.id }, title, body,
      isAdmin() ? h('div', { class: 'actions' }, save, del) : null);
  }

  $('kb-search-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const q = $('kb-q').value.trim();
    if (!q) return;
    const found = (await api('GET', `/knowledge/search?q=${enc(q)}`)) || [];
    $('kb-found').replaceChildren(...(found.length
      ? found.map((f) => h('li', null, h('strong', null, f.title),
        h('span', { class: 'muted small' }, ` covers ${Math.round(f.coverage * 100)}% of the question`)))
      : [h('li', { class: 'muted' }, 'Nothing in the knowledge base or catalogue matches.')]));
  });

  // --------------------------------------------------------------- users

  const ROLES = ['owner', 'admin', 'operator', 'viewer'];

  async function loadUsers() {
    $('users-note').hidden = isAdmin();
    $('users-admin').hidden = !isAdmin();
    if (!isAdmin()) return;
    const owner = state.me && state.me.role === 'owner';
    for (const o of $('new-user-role').options) o.hidden = !owner && ['owner', 'admin'].includes(o.value);
    renderUsers((await api('GET', '/users')) || []);
  }

  function renderUsers(accounts) {
    $('user-rows').replaceChildren(...accounts.map(userRow));
  }

  // One account: its role changes on the spot; disabling, removing and a new password ask
  // first. The server keeps the rules (owners, the last owner, one's own account) and says
  // why when it refuses.
  function userRow(u) {
    const me = state.me && state.me.id === u.id;
    // Only owners manage admins and owners: an admin is offered what it may do.
    const owner = state.me && state.me.role === 'owner';
    const offered = owner ? ROLES : ROLES.filter((r) => r === u.role || !['owner', 'admin'].includes(r));
    const role = h('select', {
      'aria-label': `Role of ${u.email}`,
      disabled: !owner && ['owner', 'admin'].includes(u.role) ? 'disabled' : null,
    }, offered.map((r) => h('option', { value: r, selected: r === u.role ? 'selected' : null }, humanize(r))));
    const toggle = h('button', { type: 'button', class: 'small', 'data-user-action': 'toggle' }, u.disabled ? 'Enable' : 'Disable');
    const reset = h('button', { type: 'button', class: 'small', 'data-user-action': 'password' }, 'New password');
    const remove = h('button', { type: 'button', class: 'danger small', 'data-user-action': 'remove' }, 'Remove');
    const status = [u.disabled ? 'Disabled' : 'Active', u.locked ? 'locked' : null, u.telegram_linked ? 'Telegram' : null]
      .filter(Boolean).join(' · ');
    const row = h('tr', { 'data-user': u.email },
      h('td', null, u.email, me ? h('span', { class: 'muted small' }, ' (you)') : null),
      h('td', null, role), h('td', null, status),
      h('td', null, me ? null : toggle, reset, me ? null : remove));
    const act = (buttons, fn) => busy(buttons, async () => {
      try {
        const changed = await fn();
        if (changed) row.replaceWith(userRow(changed));
      } catch (e) {
        role.value = u.role;
        throw e;
      }
    });
    role.addEventListener('change', () => act([role], async () => {
      const changed = await api('PATCH', `/users/${enc(u.id)}`, { role: role.value });
      showNotice(`${u.email} is now ${humanize(role.value).toLowerCase()}.`);
      return changed;
    }));
    toggle.addEventListener('click', () => act([toggle], async () => {
      if (!u.disabled && !window.confirm(`Disable ${u.email}? They are signed out and their conversations go back to the shop.`)) return null;
      return api('PATCH', `/users/${enc(u.id)}`, { disabled: !u.disabled });
    }));
    reset.addEventListener('click', () => act([reset], async () => {
      const password = window.prompt(`A new password for ${u.email} (they are signed out):`);
      if (!password) return null;
      const changed = await api('POST', `/users/${enc(u.id)}/password`, { password });
      showNotice(`New password set for ${u.email}.`);
      return changed;
    }));
    remove.addEventListener('click', () => busy([remove], async () => {
      if (!window.confirm(`Remove ${u.email} for good? What they did stays in the audit log.`)) return;
      await api('DELETE', `/users/${enc(u.id)}`);
      row.remove();
      showNotice(`${u.email} removed.`);
    }));
    return row;
  }

  $('user-add').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const button = ev.target.querySelector('button');
    busy([button], async () => {
      const email = $('new-user-email').value.trim();
      await api('POST', '/users', { email, role: $('new-user-role').value, password: $('new-user-password').value });
      $('new-user-email').value = '';
      $('new-user-password').value = '';
      showNotice(`${email} added.`);
      await loadUsers();
    });
  });

  // ------------------------------------------------------------ settings

  const SECTIONS = {
    profile: ['Shop profile', 'Who the shop is to its customers: its name in the web chat, how the assistant speaks, its language and currency.'],
    working_hours: ['Working hours', 'When people answer, in the shop\'s time zone. Days are ISO weekdays: 1 is Monday, 7 is Sunday.'],
    decision: ['Decision engine', 'When a draft is sent on its own, held for approval, or escalated to a person.'],
    conversation: ['Conversations', 'The mode new conversations start in, and how long to wait for a customer to finish typing.'],
    human_delay: ['Human-like delay', 'How long automatic replies wait before they go out, by length of reply.'],
    flags: ['Feature flags', 'This workspace\'s own switches. A dash means "not set here": the global value applies.'],
    policies: ['Policies', 'Intents that always go to a person, and topics the assistant must not discuss.'],
    llm: ['Language model', 'Empty fields use the gateway\'s global configuration.'],
    operators: ['Operators', 'Approval expiry, takeover length, escalation reminders, and what a customer is told while a draft waits for approval.'],
    webchat: ['Web chat', 'Sites allowed to show the chat widget in a frame, such as https://shop.example. Empty: only this gateway\'s own pages.'],
  };

  const ENUMS = {
    'conversation.default_mode': ['learning', 'semi-auto', 'auto'],
    'human_delay.night_mode': ['DELAY', 'AUTO_REPLY', 'DISABLE'],
    'llm.provider': ['offline', 'openai'],
    'llm.response_format': ['json_schema', 'json_object'],
  };
  // Fields that may be null, where a null says nothing about the type to edit.
  const NUMBER_FIELDS = new Set(['llm.temperature', 'llm.max_tokens', 'operators.operator_chat_id']);
  const NULLABLE_TEXT = new Set(['human_delay.night_auto_reply_text']);

  const HINTS = {
    'decision.t_auto': 'Confidence at or above this may be sent automatically (0–1).',
    'decision.t_escalate': 'Confidence below this escalates to a person; must be lower than t_auto.',
    'decision.weights': 'Must add up to 1.',
    'decision.intents_autosend_allowed': 'Comma-separated.',
    'decision.intents_force_handoff': 'Comma-separated.',
    'conversation.debounce_quiet_ms': 'Wait this long after the customer\'s last message (at most the cap).',
    'llm.api_key': '*** means a key is stored: leave it to keep the key, clear the field to remove it.',
    'llm.temperature': 'Between 0 and 2.',
    'operators.checking_after_minutes': 'A customer whose answer waits for approval this long is told the message below, once (0: never).',
    'operators.checking_message': 'Sent to a customer whose answer waits for approval.',
    'profile.languages': 'Other languages the shop answers in, comma-separated ISO 639-1 codes such as de, fr. A customer writing in one of them is answered in it.',
    'policies.always_escalate_intents': 'Comma-separated.',
    'policies.forbidden_topics': 'Comma-separated.',
  };

  const KNOWN_FLAGS = [
    'DECISION_ENGINE_ENABLED',
    'AI_AUTOSEND_ENABLED',
    'HUMAN_DELAY_ENABLED',
    'RAG_ENABLED',
    ...['TELEGRAM', 'WHATSAPP', 'EMAIL', 'DISCORD', 'WEBCHAT'].map((k) => `CHANNEL_${k}_ENABLED`),
  ];

  let fieldSeq = 0;

  function field(path, key, control, isCheck) {
    const hint = HINTS[path] ? h('p', { class: 'hint', id: control.id + '-hint' }, HINTS[path]) : null;
    if (hint) control.setAttribute('aria-describedby', hint.id);
    const label = h('label', { for: control.id }, humanize(key));
    return isCheck
      ? h('div', { class: 'field check' }, control, label, hint)
      : h('div', { class: 'field' }, label, control, hint);
  }

  // Returns { node, read }: read() gives the edited value back, or throws with the field named.
  function editor(path, key, value) {
    const id = 'set-' + ++fieldSeq;
    if (ENUMS[path]) {
      const options = [...ENUMS[path]];
      if (value !== null && value !== undefined && !options.includes(value)) options.push(String(value));
      const nullable = value === null || path.startsWith('llm.');
      const sel = h('select', { id },
        nullable ? h('option', { value: '' }, '(default)') : null,
        options.map((o) => h('option', { value: o }, o)));
      sel.value = value ?? '';
      return { node: field(path, key, sel), read: () => (sel.value === '' ? null : sel.value) };
    }
    if (typeof value === 'boolean') {
      const cb = h('input', { id, type: 'checkbox' });
      cb.checked = value;
      return { node: field(path, key, cb, true), read: () => cb.checked };
    }
    if (typeof value === 'number' || NUMBER_FIELDS.has(path)) {
      const input = h('input', { id, type: 'number', step: 'any', inputmode: 'decimal' });
      input.value = value ?? '';
      return {
        node: field(path, key, input),
        read: () => {
          const raw = input.value.trim();
          if (raw === '' && (value === null || value === undefined || NUMBER_FIELDS.has(path))) return null;
          const n = Number(raw);
          if (raw === '' || !Number.isFinite(n)) throw new Error(`${path} must be a number`);
          return n;
        },
      };
    }
    if (Array.isArray(value) && value.every((x) => typeof x === 'string')) {
      const input = h('input', { id, type: 'text' });
      input.value = value.join(', ');
      return {
        node: field(path, key, input),
        read: () => input.value.split(',').map((s) => s.trim()).filter(Boolean),
      };
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const children = Object.entries(value).map(([k, v]) => [k, editor(`${path}.${k}`, k, v)]);
      const hint = HINTS[path] ? h('p', { class: 'hint' }, HINTS[path]) : null;
      return {
        node: h('fieldset', null, h('legend', null, humanize(key)), hint, children.map(([, e]) => e.node)),
        read: () => Object.fromEntries(children.map(([k, e]) => [k, e.read()])),
      };
    }
    if (Array.isArray(value)) {
      const ta = h('textarea', { id, rows: 4, class: 'json' });
      ta.value = JSON.stringify(value, null, 2);
      return {
        node: field(path, key, ta),
        read: () => {
          try {
            return JSON.parse(ta.value);
          } catch {
            throw new Error(`${path} must be valid JSON`);
          }
        },
      };
    }
    // Strings, and nulls of unknown type, edit as text.
    const long = /_text$/.test(key) || (typeof value === 'string' && value.length > 80);
    const secret = /api_key|secret|password|token/.test(key);
    const input = long
      ? h('textarea', { id, rows: 3 })
      : h('input', { id, type: secret ? 'password' : 'text', autocomplete: secret ? 'off' : null });
    input.value = value ?? '';
    const emptyIsNull = value === null || NULLABLE_TEXT.has(path) || (path.startsWith('llm.') && !secret);
    return {
      node: field(path, key, input),
      read: () => (input.value === '' && emptyIsNull ? null : input.value),
    };
  }

  // Flags are per key: untouched keys are left out, so saving never pins a global value.
  function flagsEditor(flags) {
    const keys = [...new Set([...KNOWN_FLAGS, ...Object.keys(flags || {})])];
    const rows = keys.map((k) => {
      const own = flags && typeof flags[k] === 'boolean';
      const cb = h('input', { id: 'set-' + ++fieldSeq, type: 'checkbox' });
      cb.checked = own ? flags[k] : false;
      cb.indeterminate = !own;
      let st = own ? 'own' : 'unset';
      // The indeterminate dash alone is easy to misread as "on", so the state is also spelled out.
      const note = h('span', { class: 'muted small' });
      const reset = h('button', { type: 'button', class: 'ghost small' }, 'Use global value');
      const sync = () => {
        note.textContent = st === 'own' ? (cb.checked ? ' on' : ' off') : ' not set here (global value applies)';
        reset.hidden = st !== 'own';
      };
      cb.addEventListener('change', () => {
        st = 'own';
        sync();
      });
      reset.addEventListener('click', () => {
        st = 'reset';
        cb.checked = false;
        cb.indeterminate = true;
        sync();
      });
      sync();
      const node = h('div', { class: 'field check' }, cb, h('label', { for: cb.id }, k, note), reset);
      return { k, node, read: () => (st === 'own' ? cb.checked : st === 'reset' ? null : undefined) };
    });
    return {
      node: h('div', null, rows.map((r) => r.node)),
      read: () => {
        const out = {};
        for (const r of rows) {
          const v = r.read();
          if (v !== undefined) out[r.k] = v;
        }
        return out;
      },
    };
  }

  function sectionForm(name, value) {
    const [title, blurb] = SECTIONS[name] || [humanize(name), ''];
    const ed = name === 'flags' ? flagsEditor(value) : editor(name, name, value);
    // The section's top-level object renders as a fieldset; unwrap it so the card is the frame.
    const body = ed.node.tagName === 'FIELDSET' ? [...ed.node.childNodes].slice(1) : [ed.node];
    const msg = h('p', { role: 'alert', class: 'section-error', id: `settings-${name}-error` });
    const save = h('button', { type: 'submit', class: 'primary save' }, `Save ${title.toLowerCase()}`);
    const form = h('form', { class: 'card', 'data-section': name, 'aria-labelledby': `settings-${name}-title`, novalidate: true },
      h('h2', { id: `settings-${name}-title` }, title),
      blurb ? h('p', { class: 'muted small' }, blurb) : null,
      body, msg, save);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      msg.className = 'section-error';
      msg.textContent = '';
      let v;
      try {
        v = ed.read();
      } catch (e) {
        msg.textContent = e.message;
        return;
      }
      await busy([save], async () => {
        try {
          const doc = await api('PUT', '/settings', { [name]: v });
          state.settings = doc || state.settings;
          const fresh = sectionForm(name, doc && name in doc ? doc[name] : v);
          form.replaceWith(fresh);
          const ok = fresh.querySelector('.section-error');
          ok.className = 'section-ok';
          ok.setAttribute('role', 'status');
          ok.textContent = 'Saved.';
        } catch (e) {
          if (e instanceof ApiError && e.handled) return;
          // Validation errors belong next to the section they are about, not in a toast.
          msg.textContent = e.message;
          msg.scrollIntoView({ block: 'nearest' });
        }
      });
    });
    return form;
  }

  async function loadSettings() {
    const box = $('settings-forms');
    if (!isAdmin()) {
      $('settings-note').hidden = false;
      box.replaceChildren();
      return;
    }
    $('settings-note').hidden = true;
    const doc = (await api('GET', '/settings')) || {};
    state.settings = doc;
    const order = [...Object.keys(SECTIONS), ...Object.keys(doc).filter((k) => !(k in SECTIONS))];
    box.replaceChildren(...order.filter((k) => k in doc && doc[k] !== null).map((k) => sectionForm(k, doc[k])));
  }

  // --------------------------------------------------------- live events

  function setLive(on) {
    const el = $('live');
    el.classList.toggle('on', on);
    el.title = on ? 'Live updates on' : 'Live updates off: reconnecting';
  }

  let reconnectTimer = null;

  function startEvents() {
    stopEvents();
    const es = new EventSource(API + '/events');
    state.events = es;
    es.onopen = () => {
      setLive(true);
      state.reconnectDelay = 3000;
    };
    const handler = (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      onEvent(data || {});
    };
    es.onmessage = handler;
    // In case the server names its events after their type instead of leaving them unnamed.
    for (const t of ['suggestion', 'escalation', 'conversation', 'sent', 'escalation_reminder', 'delivery', 'dead_letter']) {
      es.addEventListener(t, handler);
    }
    es.onerror = () => {
      setLive(false);
      // EventSource retries network drops itself but gives up for good on an HTTP error
      // (e.g. 401): check the session, then open a new one with a growing pause.
      if (es.readyState === EventSource.CLOSED && state.events === es) {
        state.events = null;
        clearTimeout(reconnectTimer);
        reconnectTimer = setTimeout(async () => {
          if (!state.me) return;
          try {
            await api('GET', '/me');
            startEvents();
            refreshCurrent(true);
          } catch (e) {
            if (!(e instanceof ApiError && e.handled)) startEventsLater();
          }
        }, state.reconnectDelay);
        state.reconnectDelay = Math.min(state.reconnectDelay * 2, 60000);
      }
    };
  }

  function startEventsLater() {
    clearTimeout(reconnectTimer);
    reconnectTimer = setTimeout(() => state.me && startEvents(), state.reconnectDelay);
  }

  function stopEvents() {
    clearTimeout(reconnectTimer);
    if (state.events) state.events.close();
    state.events = null;
    setLive(false);
  }

  // Events come in bursts (message, suggestion, sent...): one refresh per burst is enough.
  let eventTimer = null;
  let eventConv = false;

  function onEvent(data) {
    if (!data.conversation_id || data.conversation_id === state.route.id) eventConv = true;
    clearTimeout(eventTimer);
    eventTimer = setTimeout(() => {
      const conv = eventConv;
      eventConv = false;
      refreshCurrent(conv);
    }, 250);
  }

  function refreshCurrent(convToo) {
    if (!state.me) return;
    const r = state.route;
    if (r.name === 'inbox' || r.name === 'conversation') {
      loadInbox().catch(report);
      if (convToo && r.name === 'conversation' && r.id) loadConversation(r.id).catch(report);
    } else if (r.name === 'escalations') {
      loadEscalations().catch(report);
    } else if (r.name === 'dead-letters') {
      loadDeadLetters().catch(report);
    }
  }

  // A fallback for when the event stream is down: poll, so the inbox never goes stale silently.
  setInterval(() => {
    if (state.me && (!state.events || state.events.readyState !== EventSource.OPEN) && !document.hidden) {
      refreshCurrent(true);
    }
  }, 20000);

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) refreshCurrent(true);
  });

  // ------------------------------------------------------------ keyboard

  function step(delta) {
    const list = state.conversations;
    if (!list.length) return;
    let i = list.findIndex((c) => c.id === state.route.id);
    i = i < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + delta));
    location.hash = convHref(list[i].id);
  }

  function toggleHelp() {
    const d = $('help');
    if (d.open) d.close();
    else d.showModal();
  }

  $('help-button').addEventListener('click', toggleHelp);

  document.addEventListener('keydown', (ev) => {
    if (!state.me || ev.defaultPrevented) return;
    const t = ev.target;
    const typing = t instanceof HTMLElement &&
      (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
    if (typing) {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
        if (t.id === 'draft-text') {
          ev.preventDefault();
          approveDraft(true);
        } else if (t.id === 'reply-text') {
          ev.preventDefault();
          sendReply();
        }
      } else if (ev.key === 'Escape' && (t.id === 'draft-text' || t.id === 'reply-text')) {
        t.blur(); // hands the keys back to the shortcuts
      }
      return;
    }
    if (ev.key === '?' && !ev.ctrlKey && !ev.metaKey) {
      ev.preventDefault();
      toggleHelp();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || $('help').open) return;
    const inInbox = state.route.name === 'inbox' || state.route.name === 'conversation';
    switch (ev.key) {
      case 'a':
        if (!state.draft || state.draft.decision === 'ESCALATE' || !inInbox) return;
        approveDraft(false);
        break;
      case 'j':
      case 'n':
        if (!inInbox) return;
        step(1);
        break;
      case 'k':
      case 'p':
        if (!inInbox) return;
        step(-1);
        break;
      case 'e':
        if (!state.draft || !inInbox || !canAct()) return;
        $('draft-text').focus();
        break;
      default:
        return;
    }
    ev.preventDefault();
  });

  // --------------------------------------------------------------- start

  (async () => {
    try {
      const me = await api('GET', '/me', undefined, { quiet: true });
      startSession(me);
    } catch (e) {
      if (!(e instanceof ApiError && e.handled)) {
        showLogin();
        if (e.status !== 401) report(e);
      }
    }
  })();
})();
