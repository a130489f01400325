/** The widget factory of `.peeklens` documents. */
import type { JupyterFrontEnd } from "@jupyterlab/application";
import { ABCWidgetFactory, type DocumentRegistry, DocumentWidget, type IDocumentWidget } from "@jupyterlab/docregistry";
import { LabIcon } from "@jupyterlab/ui-components";

import { PeeklensPanel } from "./widget";

export const FILE_TYPE = "peeklens";
export const FACTORY = "peeklens results";

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="10" cy="10" r="6.5" fill="none" stroke="#616161" stroke-width="2"/>
<rect x="6.5" y="9" width="2" height="4"/><rect x="9.3" y="7" width="2" height="6"/><rect x="12" y="10" width="2" height="3"/>
<path d="M14.6 15.3l1.4-1.4 5.6 5.6-1.4 1.4z"/></g></svg>`;

export const peeklensIcon = new LabIcon({ name: "peeklens:icon", svgstr: ICON_SVG });

// Launcher cards (52 px): the peeklens lens over a notebook page / over an open book, in colour.
const LENS = `<circle cx="29" cy="27" r="11" fill="#fff" fill-opacity="0.85" stroke="#3b528b" stroke-width="3"/>
<rect x="23.5" y="26" width="3" height="6" fill="#21918c"/><rect x="27.5" y="22" width="3" height="10" fill="#5ec962"/>
<rect x="31.5" y="28" width="3" height="4" fill="#fde725" stroke="#b5a400" stroke-width="0.5"/>
<path d="M36.5 35.5l2.8-2.8 9 9-2.8 2.8z" fill="#3b528b"/>`;

export const NOTEBOOK_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 52 52" width="52" height="52">
<rect x="6" y="4" width="30" height="40" rx="3" fill="#f5f5f5" stroke="#616161" stroke-width="2"/>
<path d="M11 12h20M11 17h14" stroke="#9e9e9e" stroke-width="2"/>
<text x="10" y="42" font-family="sans-serif" font-size="8" font-weight="bold" fill="#616161">ipynb</text>
${LENS}</svg>`;

export const TUTORIALS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 52 52" width="52" height="52">
<path d="M3 9c7-3 14-3 21 1v33c-7-4-14-4-21-1z" fill="#f5f5f5" stroke="#616161" stroke-width="2" stroke-linejoin="round"/>
<path d="M45 9c-7-3-14-3-21 1v33c7-4 14-4 21-1z" fill="#f5f5f5" stroke="#616161" stroke-width="2" stroke-linejoin="round"/>
<path d="M7 16c4-1.5 8-1.5 12 0M7 21c4-1.5 8-1.5 12 0" stroke="#9e9e9e" stroke-width="1.5" fill="none"/>
${LENS}</svg>`;

/** A data: URL of an SVG (the launcher's "Notebook" cards show an image from a URL). */
export function svgUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

export const notebookIcon = new LabIcon({ name: "peeklens:new-notebook", svgstr: NOTEBOOK_SVG });
export const tutorialsIcon = new LabIcon({ name: "peeklens:tutorials", svgstr: TUTORIALS_SVG });

export class PeeklensFactory extends ABCWidgetFactory<IDocumentWidget<PeeklensPanel>> {
  constructor(
    private readonly app: JupyterFrontEnd,
    options: DocumentRegistry.IWidgetFactoryOptions<IDocumentWidget<PeeklensPanel>>,
  ) {
    super(options);
  }

  protected createNewWidget(
    context: DocumentRegistry.IContext<DocumentRegistry.IModel>,
  ): IDocumentWidget<PeeklensPanel> {
    const content = new PeeklensPanel(this.app, context);
    const widget = new DocumentWidget({ content, context });
    widget.title.icon = peeklensIcon;
    widget.addClass("jp-PeeklensDocument");
    return widget;
  }
}
