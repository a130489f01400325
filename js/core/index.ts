/**
 * The one browser-side path from a results payload to the screen: the schema, its sources (a zip
 * read lazily, widget traits), the derivations (TypeScript copies of `peeklens.views`), the results
 * model and the results document. js/widgets, js/lab and js/report wire it.
 */
export * from "./schema";
export * from "./zip";
export * from "./npy";
export * from "./sha256";
export * from "./source";
export * from "./derive";
export * from "./results";
export * from "./interpret";
export * from "./document";
