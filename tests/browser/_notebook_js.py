"""JavaScript the browser tests evaluate in a JupyterLab page (``window.jupyterapp``, exposed by
``--LabApp.expose_app_in_browser``): is the current notebook's kernel idle, run its last cell, the text of
its last cell's output."""

KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""

RUN_LAST_CELL = """async () => {
  const app = window.jupyterapp;
  const nb = app.shell.currentWidget.content;
  nb.activeCellIndex = nb.widgets.length - 1;
  await app.commands.execute('notebook:run-cell');
}"""

LAST_OUTPUT = """() => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  const cell = nb.widgets[nb.widgets.length - 1];
  return cell.node.querySelector('.jp-OutputArea-output')?.textContent ?? '';
}"""
