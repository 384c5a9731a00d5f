/**
 * Vitest resolves the workspace packages to their TypeScript sources (the `anysrc-source` export
 * condition), so tests never need a build; published packages resolve to `dist/` instead.
 * @module
 */
import { defaultClientConditions, defaultServerConditions } from "vite";

/** The `resolve` and `ssr.resolve` options that pick `src/*.ts` over `dist/*.js`. */
export const sourceConditions = {
  resolve: { conditions: ["anysrc-source", ...defaultClientConditions] },
  ssr: { resolve: { conditions: ["anysrc-source", ...defaultServerConditions] } },
};
