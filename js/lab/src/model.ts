/** The document model of `.peeklens` files: it does not load the content; the view reads what it needs. */
import { Base64ModelFactory } from "@jupyterlab/docregistry";
import type { Contents } from "@jupyterlab/services";

export const MODEL = "peeklens-lazy";

/** A document model that does not load the file's content: the view reads what it needs itself. */
export class LazyModelFactory extends Base64ModelFactory {
  get name(): string {
    return MODEL;
  }
  get fileFormat(): Contents.FileFormat {
    return null;
  }
}
