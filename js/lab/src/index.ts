/**
 * peeklens JupyterLab extension.
 *
 * - `.peeklens` files (written by `pl.save`) open as read-only documents with the rank explorer,
 *   latent image gallery, neuron heatmaps, spectra and a comparison, without a kernel.
 * - Launcher and command-palette entries: "New peeklens notebook" (the quickstart template) and
 *   "Open peeklens tutorials" (the tutorial notebooks shipped with the package).
 */
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, ICommandPalette, showErrorMessage, WidgetTracker } from '@jupyterlab/apputils';
import { PageConfig, PathExt, URLExt } from '@jupyterlab/coreutils';
import {
  ABCWidgetFactory,
  Base64ModelFactory,
  DocumentRegistry,
  DocumentWidget,
  IDocumentWidget
} from '@jupyterlab/docregistry';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { Results } from './model';
import { PeeklensView, Sibling } from './panel';
import { BufferSource, ByteSource, HttpRangeSource } from './reader';
import quickstart from '../../../src/peeklens/templates/quickstart.ipynb';

const FILE_TYPE = 'peeklens';
const FACTORY = 'peeklens results';
const MODEL = 'peeklens-lazy';

export const CommandIDs = {
  newNotebook: 'peeklens:new-notebook',
  openTutorials: 'peeklens:open-tutorials'
};

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="10" cy="10" r="6.5" fill="none" stroke="#616161" stroke-width="2"/>
<rect x="6.5" y="9" width="2" height="4"/><rect x="9.3" y="7" width="2" height="6"/><rect x="12" y="10" width="2" height="3"/>
<path d="M14.6 15.3l1.4-1.4 5.6 5.6-1.4 1.4z"/></g></svg>`;

export const peeklensIcon = new LabIcon({ name: 'peeklens:icon', svgstr: ICON_SVG });

/** A document model that does not load the file's content: the view reads what it needs itself. */
class LazyModelFactory extends Base64ModelFactory {
  get name(): string {
    return MODEL;
  }
  get fileFormat(): Contents.FileFormat {
    return null;
  }
}

/** The bytes of a file on the server: ranged reads through `/files/`, else the contents API. */
async function sourceFor(app: JupyterFrontEnd, path: string): Promise<ByteSource> {
  const contents = app.serviceManager.contents;
  const settings = app.serviceManager.serverSettings;
  const local = contents.localPath(path);
  const driveName = contents.driveName(path);
  if (!driveName) {
    const url = URLExt.join(settings.baseUrl, 'files', URLExt.encodeParts(local));
    return new HttpRangeSource(url, (u, init) => ServerConnection.makeRequest(u, init ?? {}, settings));
  }
  const model = await contents.get(path, { type: 'file', format: 'base64', content: true });
  const bin = atob(String(model.content).replace(/\s/g, ''));
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
    private readonly context: DocumentRegistry.IContext<DocumentRegistry.IModel>
  ) {
    super();
    this.addClass('jp-PeeklensPanel');
    this.node.tabIndex = -1;
    this.node.appendChild(document.createTextNode('Loading…'));
    void this.load();
  }

  private async load(): Promise<void> {
    const path = this.context.path;
    const name = PathExt.basename(path);
    try {
      await this.context.ready;
      const source = await sourceFor(this.app, path);
      const results = await Results.open(source, name);
      this.view = new PeeklensView(results, { siblings: () => this.siblings(path) });
      this.node.textContent = '';
      this.node.appendChild(this.view.node);
    } catch (err) {
      this.node.textContent = '';
      const box = document.createElement('div');
      box.className = 'pl-lab-error';
      box.textContent = `Cannot open ${name}: ${(err as Error)?.message ?? err}`;
      this.node.appendChild(box);
    }
  }

  /** Other `.peeklens` files in the same folder. */
  private async siblings(path: string): Promise<Sibling[]> {
    const dir = PathExt.dirname(path);
    const listing = await this.app.serviceManager.contents.get(dir, { content: true });
    const files = (listing.content as Contents.IModel[])
      .filter(m => m.type === 'file' && m.name.endsWith('.peeklens') && m.path !== path)
      .sort((a, b) => a.name.localeCompare(b.name));
    return files.map(m => ({
      name: m.name,
      open: async () => Results.open(await sourceFor(this.app, m.path), m.name)
    }));
  }

  dispose(): void {
    this.view?.dispose();
    super.dispose();
  }
}

class PeeklensFactory extends ABCWidgetFactory<IDocumentWidget<PeeklensPanel>> {
  constructor(
    private readonly app: JupyterFrontEnd,
    options: DocumentRegistry.IWidgetFactoryOptions<IDocumentWidget<PeeklensPanel>>
  ) {
    super(options);
  }

  protected createNewWidget(context: DocumentRegistry.IContext<DocumentRegistry.IModel>): IDocumentWidget<PeeklensPanel> {
    const content = new PeeklensPanel(this.app, context);
    const widget = new DocumentWidget({ content, context });
    widget.title.icon = peeklensIcon;
    widget.addClass('jp-PeeklensDocument');
    return widget;
  }
}

// ----------------------------------------------------------------------------------- commands
async function newNotebook(app: JupyterFrontEnd, cwd: string): Promise<string> {
  const contents = app.serviceManager.contents;
  const model = await contents.newUntitled({ path: cwd, type: 'notebook' });
  let target = model.path;
  const wanted = PathExt.join(cwd, 'peeklens-quickstart.ipynb');
  try {
    await contents.get(wanted, { content: false });
  } catch {
    target = (await contents.rename(model.path, wanted)).path;
  }
  await contents.save(target, { type: 'notebook', format: 'json', content: quickstart });
  await app.commands.execute('docmanager:open', { path: target, factory: 'Notebook' });
  return target;
}

interface TutorialIndex {
  notebooks: string[];
}

async function openTutorials(app: JupyterFrontEnd, cwd: string): Promise<string | null> {
  const contents = app.serviceManager.contents;
  const settings = app.serviceManager.serverSettings;
  const base = URLExt.join(PageConfig.getBaseUrl(), 'lab', 'extensions', 'peeklens', 'static', 'tutorials');
  let index: TutorialIndex = { notebooks: [] };
  try {
    const resp = await ServerConnection.makeRequest(URLExt.join(base, 'index.json'), {}, settings);
    if (resp.ok) {
      index = await resp.json();
    }
  } catch {
    // no shipped tutorials
  }
  if (!index.notebooks.length) {
    // A checkout of the repository: its notebooks/ folder.
    try {
      const listing = await contents.get('notebooks', { content: true });
      const nbs = (listing.content as Contents.IModel[]).filter(m => m.name.endsWith('.ipynb')).sort((a, b) => a.name.localeCompare(b.name));
      await app.commands.execute('filebrowser:go-to-path', { path: 'notebooks' }).catch(() => undefined);
      if (nbs.length) {
        await app.commands.execute('docmanager:open', { path: nbs[0].path, factory: 'Notebook' });
        return nbs[0].path;
      }
    } catch {
      // none there either
    }
    await showErrorMessage(
      'peeklens tutorials',
      'This installation carries no tutorial notebooks. They live in the notebooks/ folder of the peeklens repository.'
    );
    return null;
  }
  // Copy the shipped tutorials into peeklens-tutorials/ (existing copies are kept, not overwritten).
  const dir = PathExt.join(cwd, 'peeklens-tutorials');
  try {
    await contents.get(dir, { content: false });
  } catch {
    const made = await contents.newUntitled({ path: cwd, type: 'directory' });
    await contents.rename(made.path, dir);
  }
  for (const name of index.notebooks) {
    const path = PathExt.join(dir, name);
    try {
      await contents.get(path, { content: false });
      continue;
    } catch {
      // not there yet: copy it
    }
    const resp = await ServerConnection.makeRequest(URLExt.join(base, encodeURIComponent(name)), {}, settings);
    if (!resp.ok) {
      continue;
    }
    await contents.save(path, { type: 'notebook', format: 'json', content: await resp.json() });
  }
  await app.commands.execute('filebrowser:go-to-path', { path: dir }).catch(() => undefined);
  const first = PathExt.join(dir, index.notebooks[0]);
  await app.commands.execute('docmanager:open', { path: first, factory: 'Notebook' });
  return first;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'peeklens:plugin',
  description: 'Open saved peeklens results as interactive documents; quickstart and tutorial notebooks.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, ILayoutRestorer, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null
  ) => {
    app.docRegistry.addModelFactory(new LazyModelFactory());
    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: 'peeklens results',
      extensions: ['.peeklens'],
      mimeTypes: ['application/x-peeklens'],
      fileFormat: null,
      contentType: 'file',
      icon: peeklensIcon
    });
    const factory = new PeeklensFactory(app, {
      name: FACTORY,
      label: 'peeklens results',
      fileTypes: [FILE_TYPE],
      defaultFor: [FILE_TYPE],
      readOnly: true,
      modelName: MODEL
    });
    app.docRegistry.addWidgetFactory(factory);
    const tracker = new WidgetTracker<IDocumentWidget<PeeklensPanel>>({ namespace: 'peeklens' });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void tracker.save(widget));
      void tracker.add(widget);
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: 'docmanager:open',
        args: widget => ({ path: widget.context.path, factory: FACTORY }),
        name: widget => widget.context.path
      });
    }

    // The launcher passes its folder as `cwd`; from the palette, use the file browser's folder.
    const cwd = (args: any): string =>
      typeof args?.cwd === 'string' ? args.cwd : browser ? browser.model.path : '';
    app.commands.addCommand(CommandIDs.newNotebook, {
      label: 'New peeklens notebook',
      caption: 'A notebook with the peeklens quickstart: capture, sweep ranks, explore, save',
      icon: args => (args?.isPalette ? undefined : peeklensIcon),
      execute: async args => {
        try {
          return await newNotebook(app, cwd(args));
        } catch (e) {
          await showErrorMessage('New peeklens notebook', String((e as Error)?.message ?? e), [Dialog.okButton()]);
          return null;
        }
      }
    });
    app.commands.addCommand(CommandIDs.openTutorials, {
      label: 'Open peeklens tutorials',
      caption: 'Copy the peeklens tutorial notebooks next to you and open the first one',
      icon: args => (args?.isPalette ? undefined : peeklensIcon),
      execute: async args => {
        try {
          return await openTutorials(app, cwd(args));
        } catch (e) {
          await showErrorMessage('Open peeklens tutorials', String((e as Error)?.message ?? e), [Dialog.okButton()]);
          return null;
        }
      }
    });
    if (launcher) {
      launcher.add({ command: CommandIDs.newNotebook, category: 'Notebook', rank: 10 });
      launcher.add({ command: CommandIDs.openTutorials, category: 'Notebook', rank: 11 });
    }
    if (palette) {
      palette.addItem({ command: CommandIDs.newNotebook, category: 'peeklens', args: { isPalette: true } });
      palette.addItem({ command: CommandIDs.openTutorials, category: 'peeklens', args: { isPalette: true } });
    }
  }
};

export default plugin;
