import { defineConfig } from "vitest/config";

// Unit tests of the drawing (js/views) and widget glue (js/widgets) code, in a simulated DOM.
export default defineConfig({
  test: {
    environment: "happy-dom",
    include: ["js/**/*.test.ts"],
  },
});
