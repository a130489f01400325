/**
 * Token samples in the latent gallery: each factor's top samples as text (the token in brackets with
 * a few tokens of context from its input, as `display.text` keeps it), one list item per sample.
 */
import { h } from "./shared";

const STYLE_ID = "peeklens-gallery-tokens";
const CSS = `
.pl-top-text { list-style: none; margin: 0; padding: 0; width: 100%; font-family: var(--jp-code-font-family, monospace); font-size: 11px; line-height: 1.35; }
.pl-top-text li { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; padding: 0 2px; border-radius: 2px; border: 1px solid transparent; }
.pl-top-text li.pl-hit { border-color: #d62728; }
.pl-token-focus { font-weight: 700; background: #fde68a; color: #111; border-radius: 2px; padding: 0 1px; }
`;

/** A token sample's text split around its bracketed token: [before, token, after]. */
export function splitFocus(text: string): [string, string, string] {
  const a = text.indexOf("[");
  const b = a >= 0 ? text.indexOf("]", a + 1) : -1;
  if (a < 0 || b < 0) return ["", text, ""];
  return [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1)];
}

/** The list of one factor's top token samples (`samples` and `texts` aligned, factor-major, k per factor). */
export function tokenList(
  doc: Document,
  texts: ArrayLike<string>,
  samples: ArrayLike<number> | null | undefined,
  offset: number,
  k: number,
): HTMLElement {
  if (!doc.getElementById(STYLE_ID)) {
    const st = doc.createElement("style");
    st.id = STYLE_ID;
    st.textContent = CSS;
    doc.head.appendChild(st);
  }
  const ol = h("ol", "pl-top-text");
  ol.setAttribute("aria-label", `the ${k} tokens that load most on this factor`);
  for (let j = 0; j < k && offset + j < texts.length; j++) {
    const li = h("li", "pl-token-item");
    const [before, token, after] = splitFocus(String(texts[offset + j]));
    li.appendChild(doc.createTextNode(before));
    li.appendChild(h("span", "pl-token-focus", token));
    li.appendChild(doc.createTextNode(after));
    li.title = String(texts[offset + j]);
    if (samples) li.dataset.sample = String(samples[offset + j]);
    ol.appendChild(li);
  }
  return ol;
}
