/** anywidget glue: peeklens.widgets.SpectrumPlot (one Spectrum payload per network). */
import type { SpectrumData } from "../views/types";
import { renderSpectrumPlot } from "../views/spectrum_plot";
import { listen, type RenderProps, type WidgetModel } from "./_model";
import { resultsOf, showError } from "./_source";

/** The spectra of `{name, meta, arrays}` payloads, restricted to `layers` and the top `k` values. */
export async function spectrumData(
  payloads: any[],
  layers: string[] | null,
  k: number,
  title?: string,
): Promise<SpectrumData> {
  const series = [];
  for (const p of payloads ?? []) {
    const data = await resultsOf(p.meta, p.arrays, String(p.name)).spectrumData(String(p.name));
    for (const s of data?.series ?? []) {
      if (layers && !layers.includes(s.layer)) continue;
      series.push({ ...s, values: k > 0 ? s.values.subarray(0, k) : s.values });
    }
  }
  return { series, title };
}

function fromModel(model: WidgetModel): Promise<SpectrumData> {
  return spectrumData(
    model.get("spectra"),
    model.get("layers") ?? null,
    Number(model.get("k") ?? 0),
    model.get("title") || undefined,
  );
}

async function render({ model, el }: RenderProps): Promise<() => void> {
  let handle: { destroy(): void } | null = null;
  const draw = async () => {
    try {
      const data = await fromModel(model);
      handle?.destroy();
      handle = renderSpectrumPlot(el, data);
    } catch (e) {
      showError(el, e);
    }
  };
  await draw();
  const off = listen(model, ["spectra", "layers", "k", "title"], () => void draw());
  return () => {
    off();
    handle?.destroy();
  };
}

export default { render };
