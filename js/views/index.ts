/** The peeklens views: pure drawing from plain data, no kernel needed (used by js/widgets and js/lab). */
export * from "./types";
export * from "./shared";
export { renderRankExplorer } from "./rank_explorer";
export { renderLatentGallery } from "./latent_gallery";
export type { GalleryOptions } from "./latent_gallery";
export { renderNeuronHeatmaps, unusedShare, foldFactor, describeNeuron } from "./neuron_heatmaps";
export { renderSpectrumPlot, groupByLayer } from "./spectrum_plot";
export { renderCompare, unionRanks } from "./compare";
