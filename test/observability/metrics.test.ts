/**
 * The metrics registry's series lookup: a label set is sanitised once and found again by the
 * labels as the caller passed them. Whatever the cache does, the rendered series must be the
 * ones the label sets name: order-independent, merged after sanitising, never confused.
 */
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/observability/metrics.ts";

/** `name{labels} value` lines of one family. */
function samples(text: string, family: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(family + "{") || l.startsWith(family + " "));
}

describe("createMetrics", () => {
  it("the same label set in any key order is one series", () => {
    const m = createMetrics();
    for (let i = 0; i < 3; i++) {
      m.inc("lull_http_requests_total", { route: "messages", status: "202" });
      m.inc("lull_http_requests_total", { status: "202", route: "messages" });
    }
    expect(samples(m.render(), "lull_http_requests_total")).toEqual([
      'lull_http_requests_total{route="messages",status="202"} 6',
    ]);
  });

  it("label sets that only a naive concatenation would confuse stay apart", () => {
    const m = createMetrics();
    m.inc("x_total", { a: "1", b: "2" });
    m.inc("x_total", { a: "1b2" });
    m.inc("x_total", { a: "1b=2" });
    m.inc("x_total", { a: "1,b=2" });
    m.inc("x_total", { a: "1:b", b: "" });
    m.inc("x_total", { a: "1", b: "2" }, 2);
    expect(samples(m.render(), "x_total").sort()).toEqual([
      'x_total{a="1",b="2"} 3',
      'x_total{a="1,b=2"} 1',
      'x_total{a="1:b",b=""} 1',
      'x_total{a="1b2"} 1',
      'x_total{a="1b=2"} 1',
    ]);
  });

  it("names and label names that sanitise alike share one family and one series", () => {
    const m = createMetrics();
    m.inc("lull-odd", { "bad-label": "v" });
    m.inc("lull_odd_total", { bad_label: "v" });
    m.inc("lull_odd", undefined);
    const text = m.render();
    expect(text.match(/# TYPE lull_odd_total counter/g)).toHaveLength(1);
    expect(samples(text, "lull_odd_total").sort()).toEqual([
      "lull_odd_total 1",
      'lull_odd_total{bad_label="v"} 2',
    ]);
  });

  it("histograms find their series the same way", () => {
    const m = createMetrics();
    m.observe("lull_delivery_duration_ms", 3, { outcome: "delivered" });
    m.observe("lull_delivery_duration_ms", 30, { outcome: "delivered" });
    m.observe("lull_delivery_duration_ms", 7, { outcome: "retry" });
    const text = m.render();
    expect(text).toContain('lull_delivery_duration_ms_count{outcome="delivered"} 2');
    expect(text).toContain('lull_delivery_duration_ms_sum{outcome="delivered"} 33');
    expect(text).toContain('lull_delivery_duration_ms_bucket{outcome="delivered",le="5"} 1');
    expect(text).toContain('lull_delivery_duration_ms_count{outcome="retry"} 1');
  });

  it("a rejected increment creates no series", () => {
    const m = createMetrics();
    m.inc("y_total", { a: "1" }, -1);
    m.inc("y_total", { a: "1" }, NaN);
    expect(samples(m.render(), "y_total")).toEqual([]);
  });
});
