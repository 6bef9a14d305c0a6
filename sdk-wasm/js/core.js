// Spoor SDK, JS side — shared by the script-tag loader (spoor.js) and the ESM entry
// (spoor.mjs); the build concatenates it with js/loader.js or js/esm.js and minifies it. It
// does only what wasm cannot do cheaply: DOM listeners that call into wasm, reading the page
// and storage, describing clicked elements in one crossing, the timer, gzip and transport.
// Every decision (what to capture, sessions, queue, retries, consent) is made in Rust
// (src/tracker.rs). Nothing here may throw into the host page: every entry is wrapped.

// Loads the wasm (streaming compile, else from its bytes) → Promise<start(lines, host)>,
// where start returns the running SDK — call(kind, n, m, x, a, b), the wasm's one export
// `call` (src/sdk.rs, which lists the kinds) — or undefined.
// This is wasm-bindgen's glue written by hand for the few signatures of src/sdk.rs — its
// generated glue (class wrappers, loaders for every input kind, TextEncoder fallbacks) was
// 2.2 KB of the 4.8 KB gzipped spoor.js. It speaks wasm-bindgen 0.2.130's ABI: strings go
// in as (pointer, length) allocated with __wbindgen_malloc (`X.a`), come back as (pointer, length)
// at a return pointer or as a pointer (0: None) and length; byte slices are views of the
// wasm memory; numbers left out are undefined (the ABI makes an integer 0, an f64 NaN, which
// src/sdk.rs reads only as `x as u64`: 0); no JS value crosses (the handlers call the host
// given to start, which keeps the clicked element and the compressed bytes), and the wasm,
// built without reference-types, has no externref table to set up and no start export. Imports are named
// without wasm-bindgen's prefix and hash suffix; sdk-wasm/build checks that every import of the
// built wasm has a handler here and that wasm-bindgen's glue sets up no table either.
function spoorWasm(url) {
  var S = {}, B = new Uint8Array(4096), X, L, H, te = new TextEncoder(), td = new TextDecoder('utf-8', { ignoreBOM: true }), W = WebAssembly, F;

  var mem = () => new Uint8Array(X.m.buffer),
    bytes = (p, l) => mem().subarray(p >>>= 0, p + l),
    str = (p, l) => td.decode(bytes(p, l));

  // A string (undefined: empty) into wasm memory; its length in L. Encoded into a 4 KiB
  // scratch buffer kept across calls (`encodeInto`: no new array per string — measured: the
  // allocation was a tenth of a click's cost; a longer string gets an array of its own, so
  // no large buffer stays behind), then copied into an allocation of its size.
  function pass(s) {
    // Empty (or undefined): no allocation, the pointer __wbindgen_malloc gives a zero size.
    if (!s) return L = 0, 1;
    var b = s.length * 3 > B.length ? new Uint8Array(s.length * 3) : B,
      n = te.encodeInto(s, b).written, p = X.a(L = n, 1) >>> 0;
    mem().set(b.subarray(0, n), p);
    return p;
  }

  // A string (or undefined: None) returned through the return pointer r (a Rust value of
  // two u32, so 4-aligned). The view is made after pass, which may grow the memory.
  function ret(r, s) {
    s = s == null ? 0 : pass(s);
    new Int32Array(X.m.buffer, r, 2).set([s, L]);
  }

  F = {
    now: () => H.now(),
    random: (p, l) => H.random(bytes(p, l)),
    page: (r) => ret(r, H.page()),
    store: (r, op, area, kp, kl, vp, vl) => ret(r, H.store(op, area, str(kp, kl), str(vp, vl))),
    send: (id, up, ul, ap, al, ev, bp, bl, beacon) =>
      H.send(id >>> 0, str(up, ul), bytes(ap, al), ev, bytes(bp, bl), beacon != 0),
    gzip: (id, p, l) => H.gzip(id >>> 0, str(p, l)),
    timer: (ms) => H.timer(ms),
    // The clickable-element selector and the rules' patterns are static text in the wasm:
    // decoded once each, by address (S).
    describe: (r, sp, sl, ap, al) => ret(r, H.describe(S[sp] || (S[sp] = str(sp, sl)), str(ap, al))),
    form: (r, i) => ret(r, H.form(i)),
    log: (p, l) => H.log(str(p, l)),
    iso: (r, ms) => ret(r, H.iso(ms)),
    re: (pp, pl, tp, tl) => H.re(S[pp] || (S[pp] = str(pp, pl)), str(tp, tl)),
    decode: (r, p, l) => ret(r, H.decode(str(p, l)))
  };
  // sdk-wasm/build moves the imports to the module `a`, named without wasm-bindgen's
  // prefix and hash (spoor-sdk-tools prune --import-module).
  var imports = { a: F };

  return fetch(url).then((r) => {
    var compile = () => r.arrayBuffer().then((b) => W.instantiate(b, imports));
    // Streaming needs `application/wasm`; anything else is compiled from the bytes.
    return W.instantiateStreaming ? W.instantiateStreaming(r.clone(), imports).catch(compile) : compile();
  }).then((w) => {
    X = w.instance.exports;
    // Set before start: starting already reads the page and storage.
    return (lines, host) => (H = host, X.s(pass(lines), L)) ?
      (k, n, m, x, a, b) => X.c(k, n, m, x, pass(a), L, pass(b), L) : undefined;
  });
}

// The host object the wasm talks to (src/sdk.rs imports, `spoorH.*`). `host.sdk` is the running SDK
// (call(kind, …), see spoorWasm); `host.call` calls it, never throwing. The host keeps the element
// a click or submit is about (`host.el`, which describe and form read) and the bytes of the
// latest compression (`host.z`).
function spoorHost() {
  var d = document, w = window, n = navigator, timer, FS = '\x1f', RS = '\x1e',
    TEST = ['data-testid', 'data-test', 'data-cy', 'data-spoor-id'], RE = {}, h;

  var clean = (s) => s == null ? '' : String(s).replace(/[\x1d-\x1f\n]/g, ' '),
    attr = (e, a) => clean(e.getAttribute(a)),
    // Inside `data-spoor-no-capture`, looked for up through the shadow roots' hosts too.
    off = (x) => {
      for (; x; x = x.getRootNode().host) if (x.closest('[data-spoor-no-capture]')) return 1;
    },
    cookie = (k) => {
      var m = d.cookie.match('(?:^|; )' + k.replace(/\./g, '\\.') + '=([^;]*)');
      return m ? decodeURIComponent(m[1]) : null;
    };

  return h = {
    dbg: 0,
    call: (k, n, m, x, a, b) => {
      try {
        h.sdk(k, n, m, x, a, b);
      } catch (e) {
        h.dbg && console.warn('spoor', e);
      }
    },
    now: Date.now,
    random: (b) => crypto.getRandomValues(b),
    page: () => {
      var e = d.querySelector('[data-spoor-results]');
      var l = location;
      return [l.href, clean(d.title), d.referrer, e ? attr(e, 'data-spoor-results') : '', l.host, l.pathname,
        l.search.slice(1), l.hash.slice(1)].join('\n');
    },
    // op: 0 get, 1 set (undefined: not stored), 2 delete, 3 local-storage keys starting
    // with k; area: 0 localStorage, 1 sessionStorage (this tab), 2 cookie.
    store: (op, area, k, v) => {
      try {
        var c = area > 1, s = c || (area ? w.sessionStorage : w.localStorage);
        if (op > 2) return Object.keys(s).filter((x) => !x.indexOf(k)).join('\n');
        if (op > 1) c ? d.cookie = k + '=;path=/;max-age=0' : s.removeItem(k);
        else if (op) {
          if (!c) return s.setItem(k, v), '';
          d.cookie = k + '=' + encodeURIComponent(v) + ';path=/;max-age=31536000;SameSite=Lax' +
            (location.protocol == 'https:' ? ';Secure' : '');
          if (cookie(k) == v) return '';
        } else if ((v = c ? cookie(k) : s.getItem(k)) != null) return v;
      } catch (e) {}
    },
    // One record for the clickable element (tag, type, name, id, autocomplete, class, role,
    // text, href, download, and the link's protocol, host, pathname), one of allowed data-*
    // pairs, one per element up the tree (tag, id, class, test attribute, its value,
    // nth-of-type, count of type — counted only up to 2: the selector needs to know "alone
    // or not"). Input values are never read. See src/click.rs.
    describe: (sel, attrs) => {
      var el = h.el, c = el && el.closest && el.closest(sel), o = [], m = [], p, r, i, j, t, k, ta;
      if (!c || off(c)) return '';
      t = c.localName;
      p = typeof c.href == 'string' ? c : {};
      o.push([t, clean(c.type), attr(c, 'name'), clean(c.id), attr(c, 'autocomplete'), attr(c, 'class'),
        attr(c, 'role'),
        /^(input|select|textarea)$/.test(t) ? '' : clean((c.textContent || '').slice(0, 1000)),
        clean(p.href), c.hasAttribute('download') ? 1 : '', clean(p.protocol), clean(p.host),
        clean(p.pathname)].join(FS));
      attrs && attrs.split(' ').forEach((a) => c.hasAttribute('data-' + a) && m.push(a, attr(c, 'data-' + a)));
      o.push(m.join(FS));
      for (p = c, i = 0; p && p != d.body && p != d.documentElement && i < 5; p = p.parentElement, i++) {
        t = p.localName;
        for (k = 1, r = p; r = r.previousElementSibling;) r.localName == t && k++;
        for (m = k, r = p; m < 2 && (r = r.nextElementSibling);) r.localName == t && m++;
        for (ta = '', j = 0; j < 4 && !ta; j++) p.hasAttribute(TEST[j]) && (ta = TEST[j]);
        o.push([t, clean(p.id), attr(p, 'class'), ta, ta && attr(p, ta), k, m].join(FS));
      }
      return o.join(RS);
    },
    // The form (role=search around it, action, id, class, method), then its controls
    // (type, name, id, role); see src/search.rs parse_form. With i >= 0: the value of
    // control i — only ever asked for the control Rust chose as the search box.
    form: (i) => {
      var f = h.el;
      if (i >= 0) return (f = f.elements[i]) && f.value != null ? String(f.value) : '';
      if (!f || !f.elements || off(f)) return '';
      var o = [[f.closest('[role=search]') ? 1 : '', attr(f, 'action'), clean(f.id), attr(f, 'class'),
        attr(f, 'method')].join(FS)];
      [].forEach.call(f.elements, (e) => o.push([clean(e.type), attr(e, 'name'), clean(e.id), attr(e, 'role')].join(FS)));
      return o.join(RS);
    },
    // Sends one batch: the body is `a`, or `a`, the bytes of compression `ev`, `b` (gzip
    // members) when `ev` is not 0. beacon: the page is going away. The body is bytes, not a
    // Blob (measured: a Blob per batch cost more than the rest of sending), so no
    // Content-Type is sent — and no CORS preflight is needed.
    send: (id, url, a, ev, b, beacon) => {
      var z = h.z, k = a.length, body = a;
      if (ev) {
        (body = new Uint8Array(k + z.length + b.length)).set(a);
        body.set(z, k);
        body.set(b, k + z.length);
      }
      try {
        if (beacon && n.sendBeacon(url, body)) return true;
        fetch(url, { method: 'POST', body: body, keepalive: true, credentials: 'omit' }).then((r) => {
          var ra = r.headers.get('Retry-After'), ms = 0;
          if (ra) ms = +ra >= 0 ? ra * 1e3 : Date.parse(ra) - Date.now() || 0;
          return (r.status == 200 ? r.json() : 0).then(null, () => {}).then((j) => {
            var rej = (j && j.rejected) || [];
            h.dbg && rej.length && console.warn('spoor: events rejected', rej);
            beacon || h.call(17, id, r.status, ms > 0 ? ms : 0, rej.map((x) => x.event_id).join());
          });
        }, () => beacon || h.call(17, id));
        return true;
      } catch (e) {
        return false;
      }
    },
    // Compresses off the critical path. The host keeps the bytes of the latest compression
    // (h.z): the wasm runs one at a time and names them by its id when it sends them.
    gzip: (id, text) => {
      var done = (b) => h.call(16, id, (h.z = b) ? b.length : 0);
      try {
        new Response(new Response(text).body.pipeThrough(new CompressionStream('gzip')))
          .arrayBuffer().then((b) => done(new Uint8Array(b)), done);
      } catch (e) {
        setTimeout(done);
      }
    },
    // One timer is enough: the wasm always asks for its next wake-up.
    timer: (ms) => {
      clearTimeout(timer);
      timer = setTimeout(() => h.call(0), ms);
    },
    log: (m) => console.warn('spoor: ' + m),
    iso: (ms) => new Date(ms).toISOString(),
    // The rules' patterns (src/pattern.rs), each compiled once.
    re: (p, t) => (RE[p] || (RE[p] = RegExp(p, 'i'))).test(t),
    decode: (s) => {
      try {
        return decodeURIComponent(s.replace(/\+/g, ' '));
      } catch (e) {
        return s;
      }
    }
  };
}

// spoorCore() → boot(lines, wasmUrl, queue) → Promise<api>.
function spoorCore() {
  // Every call into the SDK reads a pending route change first (see `route`).
  var d = document, w = window, n = navigator, api = {}, host = spoorHost(), rt,
    call = (...a) => (rt && routed(), host.call(...a));

  var on = (target, types, f, opt) => types.split(' ').forEach((type) => target.addEventListener(type, (e) => {
      try {
        f(e);
      } catch (x) {}
    }, opt || true)),
    throttled = (f, ms, t = 0) => (e) => {
      var now = Date.now();
      if (now - t > ms) {
        t = now;
        f(e);
      }
    },
    // A call without arguments to the wasm (src/sdk.rs `call`, kinds 0–10).
    sig = (k) => () => call(k),
    // track/identify/search (kinds 11–13): the text, then properties, traits or count.
    text = (k, f) => (a, b) => call(k, 0, 0, 0, String(a), f(b)),
    // Click and submit (kinds 14, 15): the host keeps the element — for a click inside a web
    // component's (open) shadow root the element clicked, not the component.
    element = (k) => (e) => {
      host.el = e.composedPath()[0];
      call(k);
    },
    scroll = () => {
      var e = d.documentElement, ht = Math.max(e.scrollHeight, d.body ? d.body.scrollHeight : 0);
      call(9, ht > 0 ? Math.min(100, Math.round((w.scrollY + w.innerHeight) / ht * 100)) : 100);
    },
    // A route change is read once the task that made it is over (`rt`: pending): apps set
    // the new route's title (and content) after they push its URL — the view would carry
    // the old title. Any call before then (an event tracked in the same task, the page
    // hidden) reads it first, so the new route's events follow its view.
    routed = () => {
      rt = clearTimeout(rt);
      call(5);
      scroll();
    },
    route = () => {
      clearTimeout(rt);
      rt = setTimeout(routed);
    },
    hide = () => {
      scroll();
      call(1);
    },
    // Free-form properties travel as JSON text; anything but a plain object is dropped.
    json = (o) => {
      try {
        return o && typeof o == 'object' && !Array.isArray(o) ? JSON.stringify(o) : undefined;
      } catch (e) {}
    };

  function wire() {
    on(d, 'click', element(14));
    // A middle click (a link opened in a new tab) is no `click` event.
    on(d, 'auxclick', (e) => e.button == 1 && element(14)(e));
    on(d, 'submit', element(15));
    on(d, 'visibilitychange', () => d.visibilityState == 'hidden' ? hide() : call(2));
    on(w, 'pagehide', hide);
    // Back from the back/forward cache: a new view of the page (see Tracker::on_restore).
    on(w, 'pageshow', (e) => e.persisted && call(2, 1));
    on(w, 'online', sig(4));
    on(w, 'scroll', throttled(scroll, 250), { passive: true, capture: true });
    on(w, 'mousemove keydown pointerdown touchstart wheel', throttled(sig(3), 1000), { passive: true, capture: true });
    on(w, 'popstate hashchange', route);
    ['pushState', 'replaceState'].forEach((m) => {
      var orig = history[m];
      history[m] = function () {
        var r = orig.apply(this, arguments);
        route();
        return r;
      };
    });
  }

  api.track = text(11, json);
  api.identify = text(12, json);
  api.search = text(13, (count) => count >= 0 ? String(Math.floor(count)) : '');
  api.setConsent = (granted) => call(10, granted ? 1 : 0);
  api.flush = sig(6);
  api.reset = sig(7);
  api.page = sig(8);

  // The wasm loads at once; starting — the page view, reading the page and storage — waits
  // until the document is parsed (an async script can run before the end of the body, where
  // a results count may be) and, on a prerendered page (speculation rules), until the visitor
  // goes to it (`prerenderingchange`; for ever if the prerender is dropped).
  var until = (wait, type) => new Promise((ok) => wait ? on(d, type, ok) : ok());
  return function boot(lines, wasmUrl, queue) {
    host.dbg = /(^|\n)debug=(1|true)?\n/.test(lines + '\n');
    return spoorWasm(wasmUrl).then((start) => until(d.readyState == 'loading', 'DOMContentLoaded')
      .then(() => until(d.prerendering, 'prerenderingchange')).then(() => {
      lines += '\ncompress=' + !!w.CompressionStream +
        '\nlang=' + (n.language || '') +
        '\ntz=' + (w.Intl ? Intl.DateTimeFormat().resolvedOptions().timeZone || '' : '') +
        '\nscreen=' + screen.width + 'x' + screen.height +
        '\nviewport=' + w.innerWidth + 'x' + w.innerHeight +
        '\ndnt=' + (n.doNotTrack == '1' || w.doNotTrack == '1') +
        '\ngpc=' + (n.globalPrivacyControl === true) +
        '\nvisible=' + (d.visibilityState != 'hidden');
      if (host.sdk = start(lines, host)) {
        wire();
        scroll();
        queue.splice(0).forEach((a) => api[a[0]] && api[a[0]].apply(null, [].slice.call(a, 1)));
      }
      return api;
    }));
  };
}

// Options object (ESM) or dataset (tag) → `name=value` lines; camelCase → kebab-case.
function spoorLines(o) {
  var s = '', k, v;
  for (k in o) {
    v = o[k];
    if (v != null && typeof v != 'function') {
      s += k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase()) + '=' + String(v).replace(/\n/g, ' ') + '\n';
    }
  }
  return s;
}
