// hallguard staff console. Plain script, no build step, no network but the
// daemon it came from. The page holds no secret: PINs are checked by the
// daemon. Silent incidents (§4.3) never reach it: the daemon filters them.
'use strict';
(function () {
  var TOKEN = document.querySelector('meta[name="console-token"]').content;
  var BOOT = document.querySelector('meta[name="console-boot"]').content;
  var T = {
    zh: {
      queue: '排队', allclear: '一切正常', allclear_sub: '无进行中的事件', raise: '发起应急预案', drill: '演练',
      drill_stop: '结束演练', lang: 'EN', connected: '中心已连接', disconnected: '中心未连接',
      rising: '↑', falling: '↓', steady: '→', per_min: '人/分', active: '进行中', acknowledged: '已确认', drill_tag: '演练',
      ack: '确认', resolve: '处置完毕', report: '报告进展', done_by: '完成:', step: '完成步骤', pin: '请选择姓名并输入PIN',
      who: '操作人', enter: '确认', clear: '清除', cancel: '取消', wrong_pin: 'PIN错误', refused: 'PIN错误或当前无法执行', locked: 'PIN错误次数过多,请稍后再试',
      choose_variant: '请选择情形', impact: '影响和危害程度 (§3.3 4)', control: '已采取措施及控制程度 (§3.3 5)',
      trend: '事态发展趋势 (§3.3 6)', participants: '参加人员 (§1.3)', records: '记录', pick_playbook: '选择预案',
      drill_pick: '选择演练预案', occurred: '发生于', drill_running: '演练进行中', sent: '已完成', reload: '请刷新页面',
      need_name: '请选择姓名', need_pin: '请输入PIN', offline: '与守护进程的连接中断,正在重连…'
    },
    en: {
      queue: 'Queue', allclear: 'All clear', allclear_sub: 'No incident in progress', raise: 'Raise a plan', drill: 'Drill',
      drill_stop: 'Stop drill', lang: '中文', connected: 'Center connected', disconnected: 'Center not connected',
      rising: '↑', falling: '↓', steady: '→', per_min: '/min', active: 'Active', acknowledged: 'Acknowledged', drill_tag: 'DRILL',
      ack: 'Acknowledge', resolve: 'Resolve', report: 'Report update', done_by: 'Done:', step: 'Step done', pin: 'Choose your name and enter your PIN',
      who: 'Staff', enter: 'OK', clear: 'Clear', cancel: 'Cancel', wrong_pin: 'Wrong PIN', refused: 'Wrong PIN, or not possible now', locked: 'Too many wrong PINs: wait and try again',
      choose_variant: 'Choose the case', impact: 'Impact (§3.3 4)', control: 'Measures and control (§3.3 5)',
      trend: 'Trend (§3.3 6)', participants: 'Participants (§1.3)', records: 'Records', pick_playbook: 'Choose the plan',
      drill_pick: 'Choose the plan to drill', occurred: 'Since', drill_running: 'Drill in progress', sent: 'Done', reload: 'Reload the page',
      need_name: 'Choose your name', need_pin: 'Enter your PIN', offline: 'Lost the daemon: reconnecting…'
    }
  };
  var lang = localStorage.getItem('hallguard-lang') === 'en' ? 'en' : 'zh';
  var state = null;
  var $ = function (id) { return document.getElementById(id); };
  function t(k) { return T[lang][k] || k; }
  function tx(text) { return text ? (text[lang] || text.zh || text.en || '') : ''; }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function hhmm(d) {
    var p = function (n) { return (n < 10 ? '0' : '') + n; };
    return p(d.getHours()) + ':' + p(d.getMinutes());
  }

  function tick() { $('clock').textContent = hhmm(new Date()); }

  function renderStatic() {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.querySelectorAll('[data-t]').forEach(function (e) { e.textContent = t(e.getAttribute('data-t')); });
    $('btn-lang').textContent = t('lang');
  }

  function render() {
    renderStatic();
    if (!state) return;
    $('hall').textContent = state.hall.name;
    $('qlen').textContent = String(state.queue.length);
    $('qtrend').textContent = t(state.queue.trend);
    $('qrate').textContent = state.queue.rate.toFixed(1) + t('per_min');
    var b = $('broker');
    b.className = 'pill ' + (state.connected ? 'up' : 'down');
    $('broker-text').textContent = state.connected ? t('connected') : t('disconnected');
    var list = $('incidents');
    list.textContent = '';
    $('idle').hidden = state.incidents.length > 0;
    state.incidents.forEach(function (inc) { list.appendChild(card(inc)); });
    var dr = $('btn-drill');
    dr.textContent = state.drill ? t('drill_stop') : t('drill');
    dr.className = 'big' + (state.drill ? ' warn' : '');
  }

  function card(inc) {
    var c = el('article', 'card ' + inc.state + (inc.drill ? ' drill' : ''));
    c.dataset.incident = inc.id;
    c.dataset.playbook = inc.playbook;
    var h = el('div', 'card-head');
    var title = el('div', 'card-title');
    title.appendChild(el('span', 'sec', inc.section));
    title.appendChild(document.createTextNode(tx(inc.title) + (inc.variant ? ' · ' + tx(inc.variant_title) : '')));
    h.appendChild(title);
    if (inc.drill) h.appendChild(el('span', 'badge drillb', t('drill_tag')));
    h.appendChild(el('span', 'badge ' + inc.state, t(inc.state)));
    c.appendChild(h);
    c.appendChild(el('div', 'meta', t('occurred') + ' ' + hhmm(new Date(inc.occurred_at))));
    var acts = el('div', 'actions');
    if (inc.state === 'active') acts.appendChild(action(t('ack'), 'act', { verb: 'ack', incident: inc.id }, tx(inc.title) + ': ' + t('ack')));
    if (inc.resolvable) acts.appendChild(action(t('resolve'), 'act ok', { verb: 'resolve', incident: inc.id }, tx(inc.title) + ': ' + t('resolve')));
    acts.appendChild(action(t('report'), 'act', { verb: 'report', incident: inc.id }, tx(inc.title) + ': ' + t('report'), 'report', inc));
    if (inc.drill) acts.appendChild(action(t('drill_stop'), 'act warn', { verb: 'drill', action: 'stop', incident: inc.id }, t('drill_stop')));
    c.appendChild(acts);
    var ul = el('ul', 'steps');
    inc.steps.forEach(function (s) {
      var li = el('li');
      var btn = el('button', 'step' + (s.done ? ' done' : ''));
      btn.dataset.step = s.id;
      btn.appendChild(el('span', 'box', s.done ? '✓' : ''));
      var txt = el('span', 'txt');
      txt.appendChild(el('span', 'sec', s.section));
      txt.appendChild(document.createTextNode(tx(s.text)));
      if (s.done) txt.appendChild(el('span', 'who', t('done_by') + ' ' + s.by + (s.at ? ' ' + hhmm(new Date(s.at)) : '')));
      btn.appendChild(txt);
      if (s.done) btn.disabled = true;
      else btn.addEventListener('click', function () {
        ask({ verb: 'step', incident: inc.id, step: s.id }, s.section + ' ' + tx(s.text), s.records && s.records.length ? 'records' : null, s);
      });
      li.appendChild(btn);
      ul.appendChild(li);
    });
    c.appendChild(ul);
    return c;
  }

  function action(label, cls, req, summary, form, ctx) {
    var b = el('button', cls, label);
    b.dataset.verb = req.verb;
    b.addEventListener('click', function () { ask(req, summary, form, ctx); });
    return b;
  }

  // Modal: choose a playbook (raise, drill), then a variant, then the PIN.
  function openModal(title) {
    $('m-title').textContent = title;
    $('m-body').textContent = '';
    $('modal').hidden = false;
    return $('m-body');
  }
  function closeModal() { $('modal').hidden = true; $('m-body').textContent = ''; }

  function choosePlaybook(list, title, then) {
    var body = openModal(title);
    var g = el('div', 'grid');
    list.forEach(function (pb) {
      var b = el('button', 'choice');
      b.dataset.playbook = pb.id;
      b.appendChild(el('span', 'sec', pb.section));
      b.appendChild(document.createTextNode(tx(pb.title)));
      b.addEventListener('click', function () {
        if (pb.variants && pb.variants.length) chooseVariant(pb, then);
        else then(pb, '');
      });
      g.appendChild(b);
    });
    body.appendChild(g);
  }
  function chooseVariant(pb, then) {
    var body = openModal(tx(pb.title) + ' · ' + t('choose_variant'));
    var g = el('div', 'grid');
    pb.variants.forEach(function (v) {
      var b = el('button', 'choice');
      b.dataset.variant = v.id;
      b.appendChild(el('span', 'sec', v.section));
      b.appendChild(document.createTextNode(tx(v.title)));
      b.addEventListener('click', function () { then(pb, v.id, v); });
      g.appendChild(b);
    });
    body.appendChild(g);
  }

  // ask shows the PIN pad for req (plus any fields the action needs) and
  // posts it. form: null, 'report', 'records' or 'participants'.
  function ask(req, summary, form, ctx) {
    var body = openModal(t('pin'));
    // Staff are listed by opaque id and label: the page never has a name.
    var chosen = localStorage.getItem('hallguard-staff');
    if (state && !state.staff.some(function (s) { return s.id === chosen; })) chosen = null;
    var pin = '';
    var wrap = el('div', 'pinwrap');
    var left = el('div', 'pinleft');
    left.appendChild(el('div', 'summary', summary));
    var fields = [];
    function addField(name, label, value) {
      left.appendChild(el('div', 'label', label));
      var f = el('input', 'field');
      f.type = 'text';
      f.name = name;
      f.value = value || '';
      left.appendChild(f);
      fields.push(f);
    }
    if (form === 'report') {
      addField('impact', t('impact'), ctx.impact === 'unknown' ? '' : ctx.impact);
      addField('control', t('control'), ctx.control === 'unknown' ? '' : ctx.control);
      addField('trend', t('trend'), ctx.trend === 'unknown' ? '' : ctx.trend);
    } else if (form === 'records') {
      ctx.records.forEach(function (r, i) { addField('record', t('records') + ' ' + (i + 1) + ': ' + r, ''); });
    } else if (form === 'participants') {
      addField('participants', t('participants'), '');
    }
    left.appendChild(el('div', 'label', t('who')));
    var names = el('div', 'names');
    (state ? state.staff : []).forEach(function (s) {
      var b = el('button', 'name' + (s.id === chosen ? ' sel' : ''), s.label);
      b.dataset.staff = s.id;
      b.dataset.label = s.label;
      b.addEventListener('click', function () {
        chosen = s.id;
        names.querySelectorAll('.name').forEach(function (x) { x.classList.toggle('sel', x.dataset.staff === s.id); });
      });
      names.appendChild(b);
    });
    left.appendChild(names);
    var show = el('div', 'pinshow');
    show.id = 'pin-show';
    left.appendChild(show);
    var err = el('div', 'err');
    err.id = 'pin-error';
    left.appendChild(err);
    wrap.appendChild(left);
    var pad = el('div', 'keypad');
    function redraw() { show.textContent = pin.replace(/./g, '●'); }
    ['1', '2', '3', '4', '5', '6', '7', '8', '9', 'C', '0', 'OK'].forEach(function (k) {
      var b = el('button', 'key' + (k === 'C' ? ' fn' : k === 'OK' ? ' go' : ''), k === 'C' ? t('clear') : k === 'OK' ? t('enter') : k);
      b.dataset.key = k;
      b.addEventListener('click', function () {
        if (k === 'C') pin = '';
        else if (k === 'OK') return submit();
        else if (pin.length < 12) pin += k;
        err.textContent = '';
        redraw();
      });
      pad.appendChild(b);
    });
    wrap.appendChild(pad);
    body.appendChild(wrap);
    var busy = false;
    function submit() {
      if (busy) return;
      if (!chosen) { err.textContent = t('need_name'); return; }
      if (!pin) { err.textContent = t('need_pin'); return; }
      var r = Object.assign({}, req, { staff: chosen, pin: pin });
      fields.forEach(function (f) {
        var v = f.value.trim();
        if (f.name === 'record') (r.records = r.records || []).push(v);
        else if (f.name === 'participants') r.participants = v ? v.split(/[,，、;；]\s*/) : [];
        else if (v) r[f.name] = v;
      });
      busy = true;
      fetch('/console/api/action', {
        method: 'POST', credentials: 'same-origin', cache: 'no-store',
        headers: { 'Content-Type': 'application/json', 'X-Console-Token': TOKEN },
        body: JSON.stringify(r)
      }).then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (j) { return { status: res.status, body: j }; });
      }).then(function (res) {
        busy = false;
        pin = '';
        redraw();
        if (res.body.ok) {
          localStorage.setItem('hallguard-staff', chosen);
          closeModal();
          refresh();
          return;
        }
        var reason = res.body.reason;
        if (reason === 'csrf') { location.reload(); return; }
        err.textContent = reason === 'refused' ? t('refused') : reason === 'locked' ? t('locked') : (res.body.error || String(res.status));
      }).catch(function () {
        busy = false;
        err.textContent = t('offline');
      });
    }
    redraw();
  }

  $('m-close').addEventListener('click', closeModal);
  $('btn-lang').addEventListener('click', function () {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('hallguard-lang', lang);
    render();
  });
  $('btn-raise').addEventListener('click', function () {
    if (!state) return;
    choosePlaybook(state.manual, t('pick_playbook'), function (pb, variant, v) {
      ask({ verb: 'trigger', playbook: pb.id, variant: variant }, pb.section + ' ' + tx(pb.title) + (v ? ' · ' + tx(v.title) : ''));
    });
  });
  $('btn-drill').addEventListener('click', function () {
    if (!state) return;
    if (state.drill) {
      ask({ verb: 'drill', action: 'stop', incident: state.drill.incident }, t('drill_stop'));
      return;
    }
    choosePlaybook(state.drillable, t('drill_pick'), function (pb, variant, v) {
      ask({ verb: 'drill', action: 'start', playbook: pb.id, variant: variant },
        t('drill') + ': ' + pb.section + ' ' + tx(pb.title) + (v ? ' · ' + tx(v.title) : ''), 'participants');
    });
  });

  function apply(s) {
    if (s.boot !== BOOT) { location.reload(); return; } // the daemon restarted
    state = s;
    render();
  }
  function refresh() {
    fetch('/console/api/state', { cache: 'no-store' }).then(function (r) { return r.json(); }).then(apply).catch(function () {});
  }

  // Live updates. EventSource reconnects by itself (retry: 1s); if it gives
  // up (an HTTP error while the daemon restarts, or 503 when the daemon's
  // cap of open streams is reached) the state is fetched once and a new
  // stream is tried after 2 s.
  var es = null;
  function connect() {
    es = new EventSource('/console/events');
    es.addEventListener('state', function (e) { apply(JSON.parse(e.data)); });
    es.addEventListener('open', refresh);
    es.addEventListener('error', function () {
      if (es.readyState === EventSource.CLOSED) { refresh(); setTimeout(connect, 2000); }
    });
  }

  renderStatic();
  tick();
  setInterval(tick, 1000);
  refresh();
  connect();
})();
