/** The launcher and palette commands: "New peeklens notebook" and "Open peeklens tutorials". */
import type { JupyterFrontEnd } from "@jupyterlab/application";
import { showErrorMessage } from "@jupyterlab/apputils";
import { PageConfig, PathExt, URLExt } from "@jupyterlab/coreutils";
import { type Contents, ServerConnection } from "@jupyterlab/services";

import quickstart from "../../../src/peeklens/templates/quickstart.ipynb";

export const CommandIDs = {
  newNotebook: "peeklens:new-notebook",
  openTutorials: "peeklens:open-tutorials",
};

export async function newNotebook(app: JupyterFrontEnd, cwd: string): Promise<string> {
  const contents = app.serviceManager.contents;
  const model = await contents.newUntitled({ path: cwd, type: "notebook" });
  let target = model.path;
  const wanted = PathExt.join(cwd, "peeklens-quickstart.ipynb");
  try {
    await contents.get(wanted, { content: false });
  } catch {
    target = (await contents.rename(model.path, wanted)).path;
  }
  await contents.save(target, { type: "notebook", format: "json", content: quickstart });
  await app.commands.execute("docmanager:open", { path: target, factory: "Notebook" });
  return target;
}

interface TutorialIndex {
  notebooks: string[];
}

export async function openTutorials(app: JupyterFrontEnd, cwd: string): Promise<string | null> {
  const contents = app.serviceManager.contents;
  const settings = app.serviceManager.serverSettings;
  const base = URLExt.join(PageConfig.getBaseUrl(), "lab", "extensions", "peeklens", "static", "tutorials");
  let index: TutorialIndex = { notebooks: [] };
  try {
    const resp = await ServerConnection.makeRequest(URLExt.join(base, "index.json"), {}, settings);
    if (resp.ok) {
      index = await resp.json();
    }
  } catch {
    // no shipped tutorials
  }
  if (!index.notebooks.length) {
    // A checkout of the repository: its notebooks/ folder.
    try {
      const listing = await contents.get("notebooks", { content: true });
      const nbs = (listing.content as Contents.IModel[])
        .filter((m) => m.name.endsWith(".ipynb"))
        .sort((a, b) => a.name.localeCompare(b.name));
      await app.commands.execute("filebrowser:go-to-path", { path: "notebooks" }).catch(() => undefined);
      if (nbs.length) {
        await app.commands.execute("docmanager:open", { path: nbs[0].path, factory: "Notebook" });
        return nbs[0].path;
      }
    } catch {
      // none there either
    }
    await showErrorMessage(
      "peeklens tutorials",
      "This installation carries no tutorial notebooks. They live in the notebooks/ folder of the peeklens repository.",
    );
    return null;
  }
  // Copy the shipped tutorials into peeklens-tutorials/ (existing copies are kept, not overwritten).
  const dir = PathExt.join(cwd, "peeklens-tutorials");
  try {
    await contents.get(dir, { content: false });
  } catch {
    const made = await contents.newUntitled({ path: cwd, type: "directory" });
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
    await contents.save(path, { type: "notebook", format: "json", content: await resp.json() });
  }
  await app.commands.execute("filebrowser:go-to-path", { path: dir }).catch(() => undefined);
  const first = PathExt.join(dir, index.notebooks[0]);
  await app.commands.execute("docmanager:open", { path: first, factory: "Notebook" });
  return first;
}
