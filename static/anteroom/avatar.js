// Initials avatars, the same as the server's (lobby/avatars.py: the steps are described there;
// tests/browser/test_branding_ui.py checks that both give the same answers).
const PALETTE_SIZE = 8;
const ALNUM = /[\p{L}\p{N}]/u;
const SPACES = /[\t\n\v\f\r\p{Zs}]+/u;

function words(name) {
  return String(name ?? '').normalize('NFC').split(SPACES).filter(Boolean);
}

function firstAlnum(word) {
  for (const ch of word) if (ALNUM.test(ch)) return [...ch.toUpperCase()][0];
  return '';
}

export function initials(name) {
  const letters = words(name).map(firstAlnum).filter(Boolean);
  if (!letters.length) return '?';
  return letters.length === 1 ? letters[0] : letters[0] + letters[letters.length - 1];
}

export function colourIndex(name) {
  let h = 2166136261;
  for (const ch of words(name).join(' ')) {
    h ^= ch.codePointAt(0);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h % PALETTE_SIZE;
}

// A decorative <span> (aria-hidden): the name next to it stays the readable text.
export function avatar(name) {
  const span = document.createElement('span');
  span.className = `avatar avatar-${colourIndex(name)}`;
  span.setAttribute('aria-hidden', 'true');
  span.textContent = initials(name);
  return span;
}
