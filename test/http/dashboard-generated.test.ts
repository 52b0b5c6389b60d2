/**
 * The dashboard's committed module is what scripts/gen-dashboard.ts makes of the real .html,
 * .css and .ts files today (like the Lua's generated.ts), and the page it holds is whole: the
 * stylesheet and the transpiled script are inlined, with nonce placeholders for the CSP.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { compileDashboard, generatedPath, renderModule } from "../../scripts/gen-dashboard.ts";
import { renderDashboardHtml } from "../../src/http/dashboard/render.ts";

describe("generated dashboard module", () => {
  it("is fresh: regenerating from the sources gives the committed file", () => {
    expect(readFileSync(generatedPath, "utf8")).toBe(renderModule(compileDashboard()));
  });

  it("inlines the stylesheet and the script, each with the nonce", () => {
    const html = renderDashboardHtml("abc123");
    expect(html).toContain('<style nonce="abc123">');
    expect(html).toContain('<script type="module" nonce="abc123">');
    expect(html).not.toContain('href="dashboard.css"');
    expect(html).not.toContain('src="dashboard.js"');
    // TypeScript was transpiled away: no type annotations reach the browser.
    expect(html).not.toMatch(/interface BufferRow/);
    expect(html).toContain("Requeue selected");
  });
});
