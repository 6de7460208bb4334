// Debian's Chromium, driven by playwright-core (no browser download is
// possible here: `npx playwright install` cannot run).
import fs from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CRIER_CHROMIUM || "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches Chromium. playwright gives each launch a fresh temporary
 * --user-data-dir (and each context its own storage), so no profile
 * survives between runs or leaks between cases. */
export async function launch() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run \`bash tests/deps.sh\``);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
}

/** Opens `url` in a new page of `context`, collecting uncaught page errors
 * (a case asserts there were none) and console errors (printed when a
 * case fails, to show what the page saw). */
export async function openPage(context, url) {
  const page = await context.newPage();
  page.errors = [];
  page.consoleErrors = [];
  page.on("pageerror", (e) => page.errors.push(String(e && e.stack ? e.stack : e)));
  page.on("console", (m) => {
    if (m.type() === "error") page.consoleErrors.push(m.text());
  });
  await page.goto(url);
  return page;
}
