// Spoor SDK, JS side — shared by the script-tag loader (spoor.js) and the ESM entry
// (spoor.mjs); the build concatenates it with wasm-bindgen's glue. It does only what wasm
// cannot do cheaply: DOM listeners that call wasm exports, reading the page and storage,
// describing clicked elements in one crossing, timers, gzip and transport. Every decision
// (what to capture, sessions, queue, retries, consent) is made in Rust (src/tracker.rs).
// Nothing here may throw into the host page: every entry point is wrapped.

// The host object the wasm talks to (src/sdk.rs `Host`). W holds the wasm exports; its
// callbacks (tick, compressed, sent) are called by name.
function spoorHost(W) {
  var d = document, w = window, n = navigator, timer, dbg = { on: 0 }, FS = '\x1f', RS = '\x1e',
    TEST = ['data-testid', 'data-test', 'data-cy', 'data-spoor-id'], attrList, attrText;

  function call(f) {
    try {
      return W[f].apply(null, [].slice.call(arguments, 1));
    } catch (e) {
      dbg.on && console.warn('spoor', e);
    }
  }

  function clean(s) {
    return s == null ? '' : String(s).replace(/[\x1d-\x1f\n]/g, ' ');
  }

  function attr(e, a) {
    return clean(e.getAttribute(a));
  }

  function storage(area) {
    try {
      return area ? w.sessionStorage : w.localStorage;
    } catch (e) {}
  }

  function cookie(k) {
    var m = d.cookie.match(new RegExp('(?:^|; )' + k.replace(/\./g, '\\.') + '=([^;]*)'));
    return m ? decodeURIComponent(m[1]) : undefined;
  }

  return {
    dbg: dbg,
    call: call,
    now: Date.now,
    random: function (b) {
      try {
        crypto.getRandomValues(b);
      } catch (e) {
        for (var i = 0; i < b.length; i++) b[i] = Math.random() * 256;
      }
    },
    page: function () {
      return location.href + '\n' + clean(d.title) + '\n' + d.referrer;
    },
    // area: 0 localStorage, 1 sessionStorage (this tab), 2 cookie
    get: function (area, k) {
      try {
        var v = area == 2 ? cookie(k) : storage(area).getItem(k);
        return v == null ? undefined : v;
      } catch (e) {}
    },
    set: function (area, k, v) {
      try {
        if (area == 2) {
          d.cookie = k + '=' + encodeURIComponent(v) + '; path=/; max-age=31536000; SameSite=Lax' +
            (location.protocol == 'https:' ? '; Secure' : '');
          return cookie(k) == v;
        }
        storage(area).setItem(k, v);
        return true;
      } catch (e) {
        return false;
      }
    },
    del: function (area, k) {
      try {
        if (area == 2) d.cookie = k + '=; path=/; max-age=0';
        else storage(area).removeItem(k);
      } catch (e) {}
    },
    keys: function (prefix) {
      var o = [], s, i, k;
      try {
        s = storage(0);
        for (i = 0; i < s.length; i++) {
          k = s.key(i);
          k.indexOf(prefix) || o.push(k);
        }
      } catch (e) {}
      return o.join('\n');
    },
    results: function () {
      var e = d.querySelector('[data-spoor-results]');
      return e ? e.getAttribute('data-spoor-results') : undefined;
    },
    // One record for the clickable element (tag, type, name, id, autocomplete, class, role,
    // text, href, download), one of allowed data-* pairs, one per element up the tree
    // (tag, id, class, test attribute, its value, nth-of-type, count of type — counted only
    // up to 2: the selector needs to know "alone or not"). Input values are never read.
    // See src/click.rs.
    describe: function (el, sel, attrs) {
      var c = el && el.closest && el.closest(sel), o = [], p, r, i, j, t, k, m, ta;
      if (!c || c.closest('[data-spoor-no-capture]')) return '';
      t = c.tagName.toLowerCase();
      o.push([t, attr(c, 'type'), attr(c, 'name'), clean(c.id), attr(c, 'autocomplete'), attr(c, 'class'),
        attr(c, 'role'),
        /^(input|select|textarea)$/.test(t) ? '' : clean((c.textContent || '').slice(0, 1000)).replace(/\s+/g, ' '),
        typeof c.href == 'string' ? clean(c.href) : '', c.hasAttribute('download') ? 1 : ''].join(FS));
      if (attrs !== attrText) {
        attrText = attrs;
        attrList = attrs ? attrs.split(',') : [];
      }
      m = [];
      for (j = 0; j < attrList.length; j++) {
        t = 'data-' + attrList[j];
        c.hasAttribute(t) && m.push(attrList[j], attr(c, t));
      }
      o.push(m.join(FS));
      for (p = c, i = 0; p && p != d.body && p != d.documentElement && i < 5; p = p.parentElement, i++) {
        t = p.localName;
        for (k = 1, r = p.previousElementSibling; r; r = r.previousElementSibling) r.localName == t && k++;
        for (m = k, r = p.nextElementSibling; r && m < 2; r = r.nextElementSibling) r.localName == t && m++;
        for (ta = '', j = 0; j < 4 && !ta; j++) p.hasAttribute(TEST[j]) && (ta = TEST[j]);
        o.push([t, clean(p.id), attr(p, 'class'), ta, ta ? attr(p, ta) : '', k, m].join(FS));
      }
      return o.join(RS);
    },
    // The form (role=search around it, action, id, class, method), then its controls
    // (type, name, id, role). See src/tracker.rs parse_form.
    form: function (f) {
      if (!f || !f.elements || f.closest('[data-spoor-no-capture]')) return '';
      var o = [[f.closest('[role=search]') ? 1 : '', attr(f, 'action'), clean(f.id), attr(f, 'class'),
        attr(f, 'method')].join(FS)];
      [].forEach.call(f.elements, function (e) {
        o.push([clean(e.type), attr(e, 'name'), clean(e.id), attr(e, 'role')].join(FS));
      });
      return o.join(RS);
    },
    // Only ever asked for the control Rust chose as the search box.
    value: function (f, i) {
      var e = f.elements[i];
      return e && e.value != null ? String(e.value).replace(/\s+/g, ' ') : '';
    },
    // Sends one batch body (string, or gzip bytes). beacon: the page is going away.
    send: function (id, url, body, beacon) {
      if (beacon) {
        try {
          if (n.sendBeacon(url, new Blob([body], { type: 'text/plain' }))) return true;
        } catch (e) {}
      }
      try {
        fetch(url, {
          method: 'POST',
          body: body,
          keepalive: true,
          credentials: 'omit',
          headers: { 'Content-Type': 'text/plain' }
        }).then(function (r) {
          var ra = r.headers.get('Retry-After'), ms = 0;
          if (ra) ms = +ra >= 0 ? ra * 1e3 : Date.parse(ra) - Date.now() || 0;
          return (r.status == 200 ? r.json() : Promise.resolve()).then(null, function () {}).then(function (j) {
            var rej = (j && j.rejected) || [];
            dbg.on && rej.length && console.warn('spoor: events rejected', rej);
            beacon || call('sent', id, r.status, ms > 0 ? ms : 0, rej.map(function (x) {
              return x.event_id;
            }).join(','));
          });
        }, function () {
          beacon || call('sent', id, 0, 0, '');
        });
        return true;
      } catch (e) {
        return false;
      }
    },
    // Compresses off the critical path; the wasm keeps the bytes until it sends.
    gzip: function (id, body) {
      try {
        new Response(new Blob([body]).stream().pipeThrough(new CompressionStream('gzip')))
          .arrayBuffer()
          .then(function (b) {
            call('compressed', id, new Uint8Array(b));
          }, function () {
            call('compressed', id, null);
          });
      } catch (e) {
        setTimeout(function () {
          call('compressed', id, null);
        });
      }
    },
    // One timer is enough: the wasm always asks for its next wake-up.
    timer: function (ms) {
      clearTimeout(timer);
      timer = setTimeout(function () {
        call('signal', 0, 0);
      }, ms);
    },
    log: function (m) {
      console.warn('spoor: ' + m);
    }
  };
}

// spoorCore(W, load) → boot(lines, wasmUrl, queue) → Promise<api>. load(url) instantiates
// the wasm, after which W holds its exports.
function spoorCore(W, load) {
  var d = document, w = window, n = navigator, api = {}, host = spoorHost(W), call = host.call;

  function on(target, type, f, opt) {
    target.addEventListener(type, function (e) {
      try {
        f(e);
      } catch (x) {}
    }, opt || true);
  }

  function throttled(f, ms) {
    var t = 0;
    return function (e) {
      var now = Date.now();
      if (now - t > ms) {
        t = now;
        f(e);
      }
    };
  }

  function scrollPct() {
    var e = d.documentElement, h = Math.max(e.scrollHeight, d.body ? d.body.scrollHeight : 0);
    return h > 0 ? Math.min(100, Math.round((w.scrollY + w.innerHeight) / h * 100)) : 100;
  }

  // Free-form properties travel as JSON text; anything but a plain object is dropped.
  function json(o) {
    try {
      return o && typeof o == 'object' && !Array.isArray(o) ? JSON.stringify(o) : undefined;
    } catch (e) {}
  }

  // Payload-free signals to the wasm (src/sdk.rs `signal`).
  function sig(k, a) {
    call('signal', k, a || 0);
  }

  function route() {
    sig(5);
    sig(9, scrollPct());
  }

  function hide() {
    sig(9, scrollPct());
    sig(1);
  }

  function wire() {
    on(d, 'click', function (e) {
      call('on_click', e.target);
    });
    on(d, 'submit', function (e) {
      call('on_submit', e.target);
    });
    on(d, 'visibilitychange', function () {
      d.visibilityState == 'hidden' ? hide() : sig(2);
    });
    on(w, 'pagehide', hide);
    on(w, 'pageshow', function (e) {
      e.persisted && sig(2);
    });
    on(w, 'online', function () {
      sig(4);
    });
    on(w, 'scroll', throttled(function () {
      sig(9, scrollPct());
    }, 250), { passive: true, capture: true });
    var act = throttled(function () {
      sig(3);
    }, 1000);
    ['mousemove', 'keydown', 'pointerdown', 'touchstart', 'wheel'].forEach(function (t) {
      on(w, t, act, { passive: true, capture: true });
    });
    on(w, 'popstate', route);
    on(w, 'hashchange', route);
    ['pushState', 'replaceState'].forEach(function (m) {
      var orig = history[m];
      history[m] = function () {
        var r = orig.apply(this, arguments);
        route();
        return r;
      };
    });
  }

  api.track = function (name, props) {
    call('track', String(name), json(props));
  };
  api.identify = function (id, traits) {
    call('identify', String(id), json(traits));
  };
  api.search = function (q, count) {
    call('search', String(q), count >= 0 && count < 4294967296 ? Math.floor(count) : undefined);
  };
  api.setConsent = function (granted) {
    sig(10, granted ? 1 : 0);
  };
  api.flush = function () {
    sig(6);
  };
  api.reset = function () {
    sig(7);
  };
  api.page = function () {
    sig(8);
  };

  return function boot(lines, wasmUrl, queue) {
    host.dbg.on = /(^|\n)debug=(1|true)?\n/.test(lines + '\n');
    lines += '\ncompress=' + (typeof CompressionStream == 'function') +
      '\nlang=' + (n.language || '') +
      '\ntz=' + (w.Intl ? Intl.DateTimeFormat().resolvedOptions().timeZone || '' : '') +
      '\nscreen=' + screen.width + 'x' + screen.height +
      '\nviewport=' + w.innerWidth + 'x' + w.innerHeight +
      '\ndnt=' + (n.doNotTrack == '1' || w.doNotTrack == '1') +
      '\ngpc=' + (n.globalPrivacyControl === true) +
      '\nvisible=' + (d.visibilityState != 'hidden') + '\n';
    return load({ module_or_path: wasmUrl }).then(function () {
      if (call('start', lines, host)) {
        wire();
        sig(9, scrollPct());
        queue.splice(0).forEach(function (a) {
          api[a[0]] && api[a[0]].apply(null, [].slice.call(a, 1));
        });
      }
      return api;
    });
  };
}

// Options object (ESM) or dataset (tag) → `name=value` lines; camelCase → kebab-case.
function spoorLines(o) {
  var s = '', k, v;
  for (k in o) {
    v = o[k];
    if (v == null || typeof v == 'function') continue;
    s += k.replace(/[A-Z]/g, function (c) {
      return '-' + c.toLowerCase();
    }) + '=' + String(Array.isArray(v) ? v.join(',') : v).replace(/\n/g, ' ') + '\n';
  }
  return s;
}
