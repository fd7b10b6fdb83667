// @ts-check
// Helpers shared by the page scripts (dashboard.js, guest.js, media-call.js, device-check.js):
// the page's config, element lookup and building, rows cloned from <template> elements, and
// the m:ss clock. Markup lives in the Django templates; scripts clone it and fill data in.
import { clockOffsetFrom } from './client.js';

/**
 * The page's config (`{{ config|json_script:"anteroom-config" }}`); `{}` on a page without one.
 * @typedef {{room?: string, token?: string, staff?: boolean, level?: string,
 *            server_now?: string, [key: string]: any}} PageConfig
 */

/** @type {PageConfig} */
export const cfg = (() => {
  const node = document.getElementById('anteroom-config');
  return node ? JSON.parse(node.textContent || '{}') : {};
})();

export const html = document.documentElement;

/**
 * The element with this id (pages only ask for ids their template has). Typed `any`: the pages
 * read inputs, selects, buttons and dialogs through it alike.
 * @param {string} id
 * @returns {any}
 */
export const $ = (id) => document.getElementById(id);

/** Milliseconds to add to `Date.now()` for the server's clock (from the page's `server_now`). */
export const clockOffset = cfg.server_now ? clockOffsetFrom(cfg.server_now) : 0;

/**
 * A new element: `attrs` are attributes, except `class` (the class name) and `text` (its text).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {...(Node | string)} children
 * @returns {HTMLElement}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

/**
 * A copy of the first element of `<template id="…">`: the one place a row's markup is written.
 * @param {string} templateId
 * @returns {HTMLElement}
 */
export function clone(templateId) {
  const tpl = /** @type {HTMLTemplateElement | null} */ (document.getElementById(templateId));
  if (!tpl) throw new Error(`no <template id="${templateId}">`);
  const node = tpl.content.firstElementChild?.cloneNode(true);
  if (!(node instanceof HTMLElement)) throw new Error(`<template id="${templateId}"> is empty`);
  return node;
}

/**
 * Fill the `[data-slot="…"]` elements of a freshly cloned row: a string becomes the text,
 * `true` shows the element as the template wrote it (so its words stay translatable there),
 * `false` or `null` removes it (with the space before it), as the server leaves out a tag that
 * does not apply.
 * @param {ParentNode} root
 * @param {Record<string, string | boolean | null>} slots
 */
export function fill(root, slots) {
  for (const [name, value] of Object.entries(slots)) {
    for (const node of root.querySelectorAll(`[data-slot="${name}"]`)) {
      if (!(node instanceof HTMLElement)) continue;
      if (value === null || value === false) {
        const before = node.previousSibling;
        if (before && before.nodeType === Node.TEXT_NODE && !before.textContent?.trim()) {
          before.remove();
        }
        node.remove();
        continue;
      }
      node.hidden = false;
      if (typeof value === 'string') node.textContent = value;
    }
  }
}

/**
 * `m:ss` for a number of seconds (a countdown, a timer).
 * @param {number} seconds
 * @returns {string}
 */
export function mmss(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Set an element's text by id.
 * @param {string} id
 * @param {string} text
 */
export function setText(id, text) {
  $(id).textContent = text;
}
