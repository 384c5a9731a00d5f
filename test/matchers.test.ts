import { describe, expect, it } from "vitest";
import { NONE } from "@anysrc/testbed";

describe("NONE: an empty record, exactly", () => {
  it("inside toMatchObject, a nested {} accepts any object — the hole NONE closes", () => {
    expect({ dropped: { "queue-full": 3 } }).toMatchObject({ dropped: {} });
    expect(() => expect({ dropped: { "queue-full": 3 } }).toMatchObject({ dropped: NONE })).toThrow();
    expect({ dropped: {}, received: 1 }).toMatchObject({ dropped: NONE });
  });

  it("is not satisfied by a missing field, an array or null", () => {
    for (const actual of [{}, { dropped: [] }, { dropped: null }]) expect(() => expect(actual).toMatchObject({ dropped: NONE })).toThrow();
  });
});
