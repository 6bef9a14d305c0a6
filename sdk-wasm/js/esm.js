// ESM entry (spoor.mjs = core.js + this). Typed in spoor.d.ts.
// Calls made before init() has finished are queued and replayed; nothing here throws.
var real, started, queue = [];

function method(f) {
  return (...a) => {
    if (real) return real[f](...a);
    queue.push([f, ...a]);
  };
}

export var track = method('track');
export var identify = method('identify');
export var reset = method('reset');
export var page = method('page');
export var flush = method('flush');
export var search = method('search');
export var setConsent = method('setConsent');

export function init(options) {
  if (!started) {
    started = new Promise((ok) => {
      var o = {}, k, url;
      for (k in options) if (k != 'wasmUrl') o[k] = options[k];
      url = options.wasmUrl || new URL('spoor_bg.wasm', import.meta.url).href;
      ok(spoorCore()(spoorLines(o), url, queue));
    }).then((api) => {
      real = api;
      return true;
    }, () => false);
  }
  return started;
}
