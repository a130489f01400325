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
