/** Spoor browser SDK — ESM entry. Every function is safe to call before `init` resolves
 * (calls are queued) and never throws. */

/** A JSON object of free-form properties or traits. */
export type Json = { [key: string]: unknown };

export interface Options {
  /** Write key, `pk_…`. */
  key: string;
  /** Collector base URL, e.g. `https://c.example`. */
  host: string;
  /** `opt-out` (default): track until `setConsent(false)`; `opt-in`: nothing until `setConsent(true)`. */
  consent?: 'opt-in' | 'opt-out';
  /** Treat Do-Not-Track / Global Privacy Control as an opt-out. Default `true`. */
  respectDnt?: boolean;
  /** Store nothing on the device; ids live in memory for this page only. */
  cookieless?: boolean;
  /** Extra query parameters to remove from captured URLs. */
  scrub?: string[];
  /** Share of visitors to track: `0.25` or `'25%'`. */
  sample?: number | string;
  /** URL parameters that carry a site-search query. Default `q, query, search, s, keyword, keywords`. */
  searchParams?: string[];
  /** `data-*` attributes (without `data-`) copied from clicked elements into properties. */
  attrs?: string[];
  /** Minutes of inactivity that end a session. Default 30. */
  sessionTimeout?: number;
  /** Longest wait before a batch is sent, ms. Default 1000. */
  flushMs?: number;
  /** Most events per batch. Default 50. */
  batchSize?: number;
  /** Most events kept while the collector is unreachable; the oldest are dropped. Default 1000. */
  maxQueue?: number;
  /** Click autocapture. Default `true`. */
  autocapture?: boolean;
  /** Page views on history / hash navigation. Default `true`. */
  spa?: boolean;
  /** Gzip batches with CompressionStream when the browser has it. Default `true`. */
  compress?: boolean;
  /** Log delivery trouble and rejected events to the console. */
  debug?: boolean;
  /** Where the wasm is; default `spoor_bg.wasm` next to this module. */
  wasmUrl?: string;
}

/** Loads the wasm and starts capturing; resolves `false` if it could not start. */
export function init(options: Options): Promise<boolean>;
/** A custom event. */
export function track(name: string, properties?: Json): void;
/** Links this browser to a known user; traits go with the `identify` event. */
export function identify(userId: string, traits?: Json): void;
/** Forgets the user: new anonymous id, new session. Call it on log-out. */
export function reset(): void;
/** A page view for the current URL (SPA routers that the history hooks miss). */
export function page(): void;
/** Records a site search; `resultsCount` when known. */
export function search(query: string, resultsCount?: number): void;
/** Grants (`true`) or withdraws (`false`) consent; remembered on the device. */
export function setConsent(granted: boolean): void;
/** Sends queued events now. */
export function flush(): void;
