import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ndrCharts, renderPng, renderSvg } from "../src/bench_charts.ts";
import { compareResults, loadResults } from "../src/bench_compare.ts";
import { reportMarkdown } from "../src/bench_report.ts";

// A recorded run (the default `anysrc bench` of 2026-12-07, before any change to the relay) read back:
// what it prints must not move unless the report's code does.
const FIXTURE = fileURLToPath(new URL("./fixtures/results-ndr.json", import.meta.url));

describe("bench report from a recorded results.json", () => {
  const results = loadResults(FIXTURE);

  it("renders the same report.md every time", async () => {
    const report = reportMarkdown(results, ["ndr", "delivered", "latency"]);
    expect(reportMarkdown(results, ["ndr", "delivered", "latency"])).toBe(report);
    await expect(report).toMatchFileSnapshot("./fixtures/report-ndr.md");
  });

  it("draws every chart as SVG with its titles, and as PNG", async () => {
    const charts = ndrCharts(results.ndr);
    expect(charts.map((c) => c.name)).toEqual(["ndr", "delivered", "latency"]);
    for (const chart of charts) {
      const svg = await renderSvg(chart.spec);
      expect(await renderSvg(chart.spec)).toBe(svg);
      expect(svg).toContain("<svg");
      const title = (chart.spec as { title: { text: string } }).title.text;
      expect(svg).toContain(title);
      const png = renderPng(svg, 800);
      expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join("")).toBe("PNG");
      // Width is bytes 16–19 of the IHDR chunk, big-endian.
      expect(new DataView(png.buffer, png.byteOffset).getUint32(16)).toBe(800);
    }
  });

  it("compares a run with itself as 1.00 everywhere", () => {
    const text = compareResults(results, results);
    const ratios = [...text.matchAll(/\| ([0-9.–]+) \|$/gm)].map((m) => m[1]);
    expect(ratios.length).toBeGreaterThan(50);
    expect(ratios.every((x) => x === "1.00" || x === "–")).toBe(true);
  });

  it("refuses a file that is not bench results, naming it", () => {
    expect(() => loadResults(fileURLToPath(new URL("../package.json", import.meta.url)))).toThrow(/package\.json is not an anysrc bench results\.json/);
  });
});
