/**
 * The charts of `anysrc bench`, drawn by Vega-Lite (compiled to Vega, rendered to SVG by Vega's
 * headless view, no browser) and turned into PNG by resvg: NDR bars with min–max whiskers beside the
 * C relay and the ceiling; delivered against offered rate from every search trial; latency percentiles
 * at the two fixed offered rates.
 * @module
 */
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";
import type { NdrRow } from "./bench_ndr.ts";
import { medianOfFinite } from "@anysrc/testbed";

/** A chart's name (its files are NAME.svg and NAME.png) and its Vega-Lite spec. */
export interface ChartSpec {
  readonly name: string;
  readonly spec: TopLevelSpec;
}

/** How a contender is named in charts and tables. */
export function contenderLabel(row: Pick<NdrRow, "who" | "kind">): string {
  if (row.who === "c") return "C relay";
  if (row.who === "c-basic") return "C relay, first version";
  if (row.who === "ceiling") return "ceiling: no relay";
  return `${row.kind} · ${row.who}`;
}

const FONT = "DejaVu Sans";
const CONFIG = {
  font: FONT,
  title: { fontSize: 15, anchor: "start" as const, subtitleFontSize: 11, subtitleColor: "#555" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  view: { stroke: "#ddd" },
};

const BASE = { $schema: "https://vega.github.io/schema/vega-lite/v6.json", config: CONFIG, background: "white" } as const;

/** One colour per contender, in the order the rows come. */
function contenderColor(order: readonly string[]) {
  return { field: "contender", type: "nominal", sort: order, title: "contender", scale: { scheme: "tableau10" } } as const;
}

/** NDR bars per contender, a panel per family, min–max whiskers over repetitions. */
function ndrChart(rows: readonly NdrRow[], order: readonly string[]): ChartSpec {
  const bars = rows.map((row) => {
    const ndrs = row.reps.map((r) => r.search.ndr);
    return {
      contender: contenderLabel(row),
      family: `IPv${row.family}`,
      group: row.who === "ceiling" ? "ceiling" : row.who.startsWith("c") ? "C baseline" : "anysrc",
      ndr: medianOfFinite(ndrs),
      min: Math.min(...ndrs),
      max: Math.max(...ndrs),
    };
  });
  const cell = rows[0] ? `${rows[0].flows} client flows of ${rows[0].size} B` : "the client flows";
  return {
    name: "ndr",
    spec: {
      ...BASE,
      title: {
        text: "No-drop rate per contender",
        subtitle: [`datagrams/s offered by ${cell}, each relayed there and back;`, "bar: median over repetitions, whisker: min–max"],
      },
      data: { values: bars },
      facet: { column: { field: "family", type: "nominal", title: null } },
      spec: {
        width: 300,
        height: { step: 22 },
        layer: [
          {
            mark: { type: "bar" },
            encoding: {
              y: { field: "contender", type: "nominal", sort: [...order], title: null, axis: { labelLimit: 200 } },
              x: { field: "ndr", type: "quantitative", title: "NDR (datagrams/s)", axis: { format: "~s" } },
              color: {
                field: "group",
                type: "nominal",
                title: null,
                scale: { domain: ["C baseline", "ceiling", "anysrc"], range: ["#4c78a8", "#9d9d9d", "#f58518"] },
              },
            },
          },
          {
            mark: { type: "rule", color: "black" },
            encoding: { y: { field: "contender", type: "nominal", sort: [...order] }, x: { field: "min", type: "quantitative" }, x2: { field: "max" } },
          },
        ],
      },
      resolve: { scale: { x: "shared" } },
    } as TopLevelSpec,
  };
}

/** Delivered against offered rate, every trial of every search. */
function deliveredChart(rows: readonly NdrRow[], order: readonly string[]): ChartSpec {
  const trials = rows.flatMap((row) =>
    row.reps.flatMap((rep) =>
      rep.search.trials.map((t) => ({
        contender: contenderLabel(row),
        family: `IPv${row.family}`,
        offered: t.offered,
        delivered: t.offered * Math.max(0, 1 - t.lost / Math.max(1, t.sent)),
        outcome: t.lost > 0 ? "lost datagrams" : t.late > 0 ? "backlog at the end" : "no loss",
      }))
    )
  );
  const color = contenderColor(order);
  return {
    name: "delivered",
    spec: {
      ...BASE,
      title: { text: "Delivered against offered rate", subtitle: "every trial of the NDR/PDR search; a failed trial lost datagrams or left a backlog" },
      data: { values: trials },
      facet: { column: { field: "family", type: "nominal", title: null } },
      spec: {
        width: 320,
        height: 300,
        layer: [
          {
            mark: { type: "line", strokeWidth: 1.5 },
            encoding: {
              x: { field: "offered", type: "quantitative", title: "offered (datagrams/s)", axis: { format: "~s" } },
              y: { field: "delivered", type: "quantitative", title: "delivered (datagrams/s)", axis: { format: "~s" } },
              color,
              order: { field: "offered", type: "quantitative" },
            },
          },
          {
            mark: { type: "point", filled: true, size: 45 },
            encoding: {
              x: { field: "offered", type: "quantitative" },
              y: { field: "delivered", type: "quantitative" },
              color,
              shape: {
                field: "outcome",
                type: "nominal",
                title: "trial",
                scale: { domain: ["no loss", "backlog at the end", "lost datagrams"], range: ["circle", "triangle-up", "cross"] },
              },
            },
          },
        ],
      },
    } as TopLevelSpec,
  };
}

/** Latency percentiles at the two fixed offered rates, a panel per percentile and family. */
function latencyChart(rows: readonly NdrRow[], order: readonly string[]): ChartSpec {
  const percentiles = [["p50Us", "p50"], ["p99Us", "p99"], ["p999Us", "p99.9"], ["maxUs", "max"]] as const;
  const latency = rows.flatMap((row) =>
    row.reps.flatMap((rep) =>
      rep.latency.flatMap((point) =>
        percentiles.map(([key, name]) => ({
          contender: contenderLabel(row),
          family: `IPv${row.family}`,
          load: `${Math.round(point.fraction * 100)} %`,
          percentile: name,
          ms: Math.max(0.001, point[key] / 1000),
        }))
      )
    )
  );
  return {
    name: "latency",
    spec: {
      ...BASE,
      title: {
        text: "Round-trip latency at fixed offered rates",
        subtitle: "50 % and 90 % of the C relay's NDR, the same rate for every contender; every echo in a log-bucket histogram",
      },
      data: { values: latency },
      facet: {
        row: { field: "family", type: "nominal", title: null },
        column: { field: "percentile", type: "nominal", title: null, sort: ["p50", "p99", "p99.9", "max"] },
      },
      spec: {
        width: 120,
        height: 180,
        mark: { type: "line", point: true },
        encoding: {
          x: { field: "load", type: "ordinal", title: "load (of C's NDR)", axis: { labelAngle: 0 } },
          y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "round trip (ms)", axis: { format: "~g" } },
          color: contenderColor(order),
        },
      },
    } as TopLevelSpec,
  };
}

/** The three charts for the headline section's rows. */
export function ndrCharts(rows: readonly NdrRow[]): ChartSpec[] {
  const order = [...new Set(rows.map(contenderLabel))];
  return [ndrChart(rows, order), deliveredChart(rows, order), latencyChart(rows, order)];
}

/** SVG of a Vega-Lite spec, rendered headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  return await view.toSVG();
}

/** PNG of an SVG, `width` pixels wide, with the system's fonts. */
export function renderPng(svg: string, width = 1000): Uint8Array {
  return new Resvg(svg, { fitTo: { mode: "width", value: width }, font: { loadSystemFonts: true, defaultFontFamily: FONT } }).render().asPng();
}

/** The older sections' ratios to C (bench_report.ts ratioRows) as grouped bars; 1.0 marked. */
export function ratioChart(rows: readonly { contender: string; measure: string; ratio: number }[]): ChartSpec {
  return {
    name: "ratios",
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      config: CONFIG,
      background: "white",
      title: { text: "anysrc ÷ C, same run", subtitle: "1.0 = as fast or as cheap as the C program of the same design; higher is better" },
      width: 520,
      layer: [
        {
          data: { values: rows },
          mark: { type: "bar" },
          encoding: {
            y: { field: "contender", type: "nominal", title: null },
            yOffset: { field: "measure", type: "nominal" },
            x: { field: "ratio", type: "quantitative", title: "ratio to C" },
            color: { field: "measure", type: "nominal", title: null, legend: { orient: "bottom", direction: "vertical" } },
          },
        },
        { data: { values: [{ one: 1 }] }, mark: { type: "rule", strokeDash: [4, 3], color: "#333" }, encoding: { x: { field: "one", type: "quantitative" } } },
      ],
    } as TopLevelSpec,
  };
}
