// Script-tag entry (spoor.js = core.js and this in one IIFE).
// <script async src="…/spoor.js" data-key="pk_…" data-host="https://collector…"></script>
// Calls made before the wasm is ready — window.spoor('track', …) through the stub
//   window.spoor = window.spoor || function () { (spoor.q = spoor.q || []).push(arguments) }
// — are queued and replayed. Never throws: if the wasm is blocked the queue just stays.
// A second copy of the tag (the site's template and a tag manager, say) does nothing: one
// SDK per page, or every event would be counted twice.
try {
  ((w, s) => {
    var o = w.spoor, q = (o && o.q) || [], stub = function () {
      q.push(arguments);
    };
    if (o && o.l) return;
    stub.q = q;
    stub.l = 1;
    w.spoor = stub;
    spoorCore()(spoorLines(s.dataset), new URL('spoor_bg.wasm', s.src).href, q)
      .then((api) => {
        var f = (c, ...a) => {
          try {
            return api[c] && api[c](...a);
          } catch (e) {}
        };
        f.q = [];
        f.ready = f.l = 1;
        w.spoor = f;
      }, () => {});
  })(window, document.currentScript);
} catch (e) {}
