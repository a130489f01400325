/** The Lumino widget of a `.peeklens` document: opens the file lazily and shows the results document. */
import type { JupyterFrontEnd } from "@jupyterlab/application";
import { PathExt, URLExt } from "@jupyterlab/coreutils";
import type { DocumentRegistry } from "@jupyterlab/docregistry";
import { type Contents, ServerConnection } from "@jupyterlab/services";
import { Widget } from "@lumino/widgets";

import {
  BufferSource,
  type ByteSource,
  HttpRangeSource,
  PeeklensView,
  Results,
  type Sibling,
  ZipSource,
} from "../../core/index";

/** Open a results file on the server as the results model (metadata and digests checked). */
export async function openResults(app: JupyterFrontEnd, path: string): Promise<Results> {
  return new Results(await ZipSource.open(await sourceFor(app, path), PathExt.basename(path)));
}

/** The bytes of a file on the server: ranged reads through `/files/`, else the contents API. */
export async function sourceFor(app: JupyterFrontEnd, path: string): Promise<ByteSource> {
  const contents = app.serviceManager.contents;
  const settings = app.serviceManager.serverSettings;
  const local = contents.localPath(path);
  const driveName = contents.driveName(path);
  if (!driveName) {
    const url = URLExt.join(settings.baseUrl, "files", URLExt.encodeParts(local));
    return new HttpRangeSource(url, (u, init) => ServerConnection.makeRequest(u, init ?? {}, settings));
  }
  const model = await contents.get(path, { type: "file", format: "base64", content: true });
  const bin = atob(String(model.content).replace(/\s/g, ""));
  const buf = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) {
    buf[i] = bin.charCodeAt(i);
  }
  return new BufferSource(buf);
}

/** The Lumino widget holding a {@link PeeklensView}. */
export class PeeklensPanel extends Widget {
  view: PeeklensView | null = null;

  constructor(
    private readonly app: JupyterFrontEnd,
    private readonly context: DocumentRegistry.IContext<DocumentRegistry.IModel>,
  ) {
    super();
    this.addClass("jp-PeeklensPanel");
    this.node.tabIndex = -1;
    this.node.appendChild(document.createTextNode("Loading…"));
    void this.load();
  }

  private async load(): Promise<void> {
    const path = this.context.path;
    const name = PathExt.basename(path);
    try {
      await this.context.ready;
      const results = await openResults(this.app, path);
      this.view = new PeeklensView(results, { siblings: () => this.siblings(path) });
      this.node.textContent = "";
      this.node.appendChild(this.view.node);
    } catch (err) {
      this.node.textContent = "";
      const box = document.createElement("div");
      box.className = "pl-lab-error";
      box.textContent = `Cannot open ${name}: ${(err as Error)?.message ?? err}`;
      this.node.appendChild(box);
    }
  }

  /** Other `.peeklens` files in the same folder. */
  private async siblings(path: string): Promise<Sibling[]> {
    const dir = PathExt.dirname(path);
    const listing = await this.app.serviceManager.contents.get(dir, { content: true });
    const files = (listing.content as Contents.IModel[])
      .filter((m) => m.type === "file" && m.name.endsWith(".peeklens") && m.path !== path)
      .sort((a, b) => a.name.localeCompare(b.name));
    return files.map((m) => ({
      name: m.name,
      open: async () => openResults(this.app, m.path),
    }));
  }

  dispose(): void {
    this.view?.dispose();
    super.dispose();
  }
}
