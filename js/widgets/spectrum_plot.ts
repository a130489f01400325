/** anywidget glue: peeklens.widgets.SpectrumPlot. */
import { renderSpectrumPlot } from "../views/spectrum_plot";
import { spectrumData } from "./_decode";
import { listen, type RenderProps } from "./_model";

function render({ model, el }: RenderProps): () => void {
  let handle = renderSpectrumPlot(el, spectrumData(model.get("series"), model.get("title") || undefined));
  const off = listen(model, ["series", "title"], () => {
    handle.destroy();
    handle = renderSpectrumPlot(el, spectrumData(model.get("series"), model.get("title") || undefined));
  });
  return () => {
    off();
    handle.destroy();
  };
}

export default { render };
