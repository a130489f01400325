/** The peeklens views: pure drawing from plain data, no kernel needed (used by js/widgets and js/lab). */
export * from "./types";
export * from "./shared";
export { renderRankExplorer } from "./rank_explorer";
export { renderLatentGallery } from "./latent_gallery";
export type { GalleryOptions } from "./latent_gallery";
export {
  renderNeuronHeatmaps,
  unusedShare,
  foldFactor,
  describeNeuron,
  aggregateChannels,
  cellText,
  rowHeight,
  layerViews,
} from "./neuron_heatmaps";
export type { ColumnMode, LayerView } from "./neuron_heatmaps";
export { renderSpectrumPlot, groupByLayer } from "./spectrum_plot";
export type { SpectrumOptions } from "./spectrum_plot";
export {
  renderCompare,
  unionRanks,
  networkColors,
  qualityRanking,
  renderQualityPanel,
  confidenceNote,
} from "./compare";
export type { QualityRanking } from "./compare";
export * from "./export";
