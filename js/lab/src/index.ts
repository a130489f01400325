/**
 * peeklens JupyterLab extension.
 *
 * - `.peeklens` files (written by `pl.save`) open as read-only documents with the rank explorer,
 *   latent image gallery, neuron heatmaps, spectra and a comparison, without a kernel.
 * - Launcher and command-palette entries: "New peeklens notebook" (the quickstart template) and
 *   "Open peeklens tutorials" (the tutorial notebooks shipped with the package).
 */
import { ILayoutRestorer, type JupyterFrontEnd, type JupyterFrontEndPlugin } from "@jupyterlab/application";
import { Dialog, ICommandPalette, showErrorMessage, WidgetTracker } from "@jupyterlab/apputils";
import type { IDocumentWidget } from "@jupyterlab/docregistry";
import { IDefaultFileBrowser } from "@jupyterlab/filebrowser";
import { ILauncher } from "@jupyterlab/launcher";

import { CommandIDs, newNotebook, openTutorials } from "./commands";
import {
  FACTORY,
  FILE_TYPE,
  NOTEBOOK_SVG,
  notebookIcon,
  PeeklensFactory,
  peeklensIcon,
  svgUrl,
  TUTORIALS_SVG,
  tutorialsIcon,
} from "./factory";
import { LazyModelFactory, MODEL } from "./model";
import type { PeeklensPanel } from "./widget";

export { CommandIDs } from "./commands";
export { peeklensIcon } from "./factory";
export { PeeklensPanel } from "./widget";

const plugin: JupyterFrontEndPlugin<void> = {
  id: "peeklens:plugin",
  description: "Open saved peeklens results as interactive documents; quickstart and tutorial notebooks.",
  autoStart: true,
  optional: [ILauncher, ICommandPalette, ILayoutRestorer, IDefaultFileBrowser],
  activate: (
    app: JupyterFrontEnd,
    launcher: ILauncher | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    browser: IDefaultFileBrowser | null,
  ) => {
    app.docRegistry.addModelFactory(new LazyModelFactory());
    app.docRegistry.addFileType({
      name: FILE_TYPE,
      displayName: "peeklens results",
      extensions: [".peeklens"],
      mimeTypes: ["application/x-peeklens"],
      fileFormat: null,
      contentType: "file",
      icon: peeklensIcon,
    });
    const factory = new PeeklensFactory(app, {
      name: FACTORY,
      label: "peeklens results",
      fileTypes: [FILE_TYPE],
      defaultFor: [FILE_TYPE],
      readOnly: true,
      modelName: MODEL,
    });
    app.docRegistry.addWidgetFactory(factory);
    const tracker = new WidgetTracker<IDocumentWidget<PeeklensPanel>>({ namespace: "peeklens" });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void tracker.save(widget));
      void tracker.add(widget);
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: "docmanager:open",
        args: (widget) => ({ path: widget.context.path, factory: FACTORY }),
        name: (widget) => widget.context.path,
      });
    }

    // The launcher passes its folder as `cwd`; from the palette, use the file browser's folder.
    const cwd = (args: any): string => (typeof args?.cwd === "string" ? args.cwd : browser ? browser.model.path : "");
    app.commands.addCommand(CommandIDs.newNotebook, {
      label: "New peeklens notebook",
      caption: "A notebook with the peeklens quickstart: capture, sweep ranks, explore, save",
      icon: (args) => (args?.isPalette ? undefined : notebookIcon),
      execute: async (args) => {
        try {
          return await newNotebook(app, cwd(args));
        } catch (e) {
          await showErrorMessage("New peeklens notebook", String((e as Error)?.message ?? e), [Dialog.okButton()]);
          return null;
        }
      },
    });
    app.commands.addCommand(CommandIDs.openTutorials, {
      label: "Open peeklens tutorials",
      caption: "Copy the peeklens tutorial notebooks next to you and open the first one",
      icon: (args) => (args?.isPalette ? undefined : tutorialsIcon),
      execute: async (args) => {
        try {
          return await openTutorials(app, cwd(args));
        } catch (e) {
          await showErrorMessage("Open peeklens tutorials", String((e as Error)?.message ?? e), [Dialog.okButton()]);
          return null;
        }
      },
    });
    if (launcher) {
      // Cards in the "Notebook" row show an image from a URL (else the label's first letter)
      launcher.add({
        command: CommandIDs.newNotebook,
        category: "Notebook",
        rank: 10,
        kernelIconUrl: svgUrl(NOTEBOOK_SVG),
      });
      launcher.add({
        command: CommandIDs.openTutorials,
        category: "Notebook",
        rank: 11,
        kernelIconUrl: svgUrl(TUTORIALS_SVG),
      });
    }
    if (palette) {
      palette.addItem({ command: CommandIDs.newNotebook, category: "peeklens", args: { isPalette: true } });
      palette.addItem({ command: CommandIDs.openTutorials, category: "peeklens", args: { isPalette: true } });
    }
  },
};

export default plugin;
