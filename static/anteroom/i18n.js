// The page scripts' translations: Django's JavaScript catalogue (/jsi18n/, JavaScriptCatalog),
// which templates/base.html loads (deferred) before these modules. It defines the globals
// gettext / ngettext / pgettext; without it (a page that does not load it, a test harness) the
// English source text is used. `manage.py makemessages -d djangojs` finds the calls by name, so
// import these names unchanged and give them plain string literals (not template literals).
// Only human-readable text is translated: error codes, frame types and field names never are.
const g = /** @type {any} */ (globalThis);

/** @param {string} msgid */
export function gettext(msgid) {
  return typeof g.gettext === 'function' ? g.gettext(msgid) : msgid;
}

/** @param {string} singular @param {string} plural @param {number} count */
export function ngettext(singular, plural, count) {
  return typeof g.ngettext === 'function'
    ? g.ngettext(singular, plural, count)
    : count === 1
      ? singular
      : plural;
}

/** @param {string} context @param {string} msgid */
export function pgettext(context, msgid) {
  return typeof g.pgettext === 'function' ? g.pgettext(context, msgid) : msgid;
}

/**
 * Fill `%(name)s` from `values` (Django's interpolate(fmt, obj, true)); values are text, never
 * markup: callers put the result in textContent.
 * @param {string} fmt @param {Record<string, unknown>} values
 */
export function interpolate(fmt, values) {
  return fmt.replace(/%\(([a-z_]+)\)s/g, (all, key) => (key in values ? String(values[key]) : all));
}

/** The page's language (the <html lang> Django rendered), for dates and times. */
export const LANG = document.documentElement.lang || 'en';

/**
 * What went wrong, for a person: the server's messages already read in the page's language (the
 * socket's language); these codes are client.js's own, whose messages stay English (an SDK).
 * @param {{ code?: string, message?: string }} err
 */
export function errorText(err) {
  /** @type {Record<string, string>} */
  const own = {
    NETWORK_ERROR: gettext('Could not reach the server.'),
    DISCONNECTED: gettext('Not connected to the server; try again.'),
    TIMEOUT: gettext('The server did not answer in time.'),
    REPLACED: gettext('You joined from another connection.'),
  };
  return (err.code && own[err.code]) || err.message || err.code || '';
}
