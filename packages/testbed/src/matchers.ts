/**
 * Matchers the suites share. Inside `toMatchObject`, a nested `{}` matches any object (subset
 * semantics all the way down), so `dropped: {}` there asserts nothing; {@link NONE} asserts it.
 * @module
 */

/** An asymmetric matcher (vitest and Jest call `asymmetricMatch` on objects that have it). */
export interface AsymmetricMatcher {
  asymmetricMatch(actual: unknown): boolean;
  toString(): string;
  toAsymmetricMatcher(): string;
}

/**
 * Matches exactly an empty object: "no drops", "no errors" inside `toMatchObject`.
 * @example expect(stats).toMatchObject({ received: 10, dropped: NONE, transports: { raw: { errors: NONE } } });
 */
export const NONE: AsymmetricMatcher = {
  asymmetricMatch: (actual) => typeof actual === "object" && actual !== null && !Array.isArray(actual) && Object.keys(actual).length === 0,
  toString: () => "NONE",
  toAsymmetricMatcher: () => "{} (exactly: nothing)",
};
