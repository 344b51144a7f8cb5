// The demo chat page (GET /, demo/chat.html) in a real headless Chromium against a running
// gateway + demo worker: two pages in one room see each other's messages and their own; a
// page in another room sees none of them, and they see none of its.
//
//   node tests/browser/chat.test.mjs [--url URL] [--budget SECONDS] [--chromium PATH]
//
// --url       the gateway, e.g. http://127.0.0.1:8000/ (env SLUICE_CHAT_URL)
// --budget    time limit of the whole run in seconds (env SLUICE_BROWSER_BUDGET, default 30):
//             every wait gets what is left of it, nothing sleeps
// --chromium  the browser (env CHROMIUM, default /usr/bin/chromium, Debian's package)
//
// Exits 0 when every check passed, 1 otherwise (with each page's state and log).
import { parseArgs } from "node:util";

import puppeteer from "puppeteer-core";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: process.env.SLUICE_CHAT_URL ?? "http://127.0.0.1:8000/" },
    budget: { type: "string", default: process.env.SLUICE_BROWSER_BUDGET ?? "30" },
    chromium: { type: "string", default: process.env.CHROMIUM ?? "/usr/bin/chromium" },
  },
});
const url = new URL(args.url);
const budgetMs = Number(args.budget) * 1000;
if (!(budgetMs > 0)) throw new Error(`--budget: not a positive number of seconds: ${args.budget}`);
const deadline = Date.now() + budgetMs;

function remaining() {
  const ms = deadline - Date.now();
  if (ms <= 0) throw new Error(`time budget of ${args.budget} s spent`);
  return ms;
}

// Bounds a step that has no timeout of its own (a click, typing, a new tab).
async function within(what, promise) {
  let timer;
  const expired = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: time budget spent`)), remaining());
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

// Should a wait itself hang past the budget (a browser that stopped answering), exit anyway.
setTimeout(() => {
  console.error(`chat.test: still running ${args.budget} s + 10 s after the start; giving up`);
  process.exit(1);
}, budgetMs + 10_000).unref();

const nonce = Math.random().toString(36).slice(2, 8);
const room = `room-${nonce}`;
const otherRoom = `other-${nonce}`;
const problems = [];

async function openPage(browser, label) {
  const page = await within(`${label}: opening a tab`, browser.newPage());
  page.label = label;
  page.on("pageerror", (error) => problems.push(`${label}: uncaught error: ${error.message}`));
  // The page is self-contained: nothing may be loaded from another origin.
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== url.origin) {
      problems.push(`${label}: request outside ${url.origin}: ${request.url()}`);
    }
  });
  await page.goto(url.href, { waitUntil: "load", timeout: remaining() });
  return page;
}

// Waits until fn(...fnArgs), evaluated in the page, is true: re-checked on each DOM change.
async function until(page, what, fn, ...fnArgs) {
  try {
    await page.waitForFunction(fn, { polling: "mutation", timeout: remaining() }, ...fnArgs);
  } catch (error) {
    throw new Error(`${page.label}: waiting for ${what}: ${error.message}`);
  }
}

async function join(page, name) {
  await within(`${page.label}: joining ${name}`, (async () => {
    await page.bringToFront();  // a background tab gets no animation frames; clicks wait for one
    await page.$eval("#room", (input) => {
      input.value = "";
    });
    await page.type("#room", name);
    await page.click("#join");
  })());
  await until(page, `connected to ${name}`, (name) => {
    const state = document.getElementById("state");
    return state.dataset.state === "open" && state.dataset.room === name;
  }, name);
}

async function send(page, text) {
  await within(`${page.label}: sending`, (async () => {
    await page.bringToFront();
    await page.type("#message", text);
    await page.click("#send");
  })());
}

const messages = (page) =>
  page.$$eval("#log li.msg", (items) => items.map((item) => item.textContent));

async function untilShown(page, texts) {
  await until(page, `the log to show ${JSON.stringify(texts)}`, (texts) => {
    const shown = [...document.querySelectorAll("#log li.msg")].map((item) => item.textContent);
    return texts.every((text) => shown.includes(text));
  }, texts);
}

async function describe(page) {
  try {
    const state = await page.$eval("#state", (s) => `${s.dataset.state}: ${s.textContent}`);
    const log = await page.$$eval("#log li", (items) => items.map((item) => item.textContent));
    return `${page.label}: [${state}] log ${JSON.stringify(log)}`;
  } catch (error) {
    return `${page.label}: (cannot read the page: ${error.message})`;
  }
}

const browser = await puppeteer.launch({
  executablePath: args.chromium,
  headless: true,
  args: ["--no-sandbox", "--headless=new", "--no-proxy-server", "--disable-dev-shm-usage"],
  timeout: remaining(),
});
const pages = [];
let failed = false;
try {
  const [a, b, c] = [
    await openPage(browser, "page A"),
    await openPage(browser, "page B"),
    await openPage(browser, "page C"),
  ];
  pages.push(a, b, c);
  const contentType = await a.evaluate(() => document.contentType);
  if (contentType !== "text/html") problems.push(`page A: document.contentType ${contentType}`);

  await join(a, room);
  await join(b, room);
  await join(c, otherRoom);
  console.log(`chat.test: A and B in ${room}, C in ${otherRoom}`);

  const fromA = `hello from A ${nonce}`;
  const fromB = `hello from B ${nonce} \u00e9\u6f22\u{1F600}`;  // non-ASCII text, whole
  await send(a, fromA);
  await send(b, fromB);
  await untilShown(a, [fromA, fromB]);
  await untilShown(b, [fromA, fromB]);
  console.log("chat.test: A and B each show both messages");

  // No sleeping to prove an absence: C's own message comes back through C's channel after
  // anything sent to C before it, so once C shows it, A's and B's would be there too had
  // they leaked. The same with A for C's message.
  const fromC = `hello from C ${nonce}`;
  await send(c, fromC);
  await untilShown(c, [fromC]);
  const fromA2 = `A again ${nonce}`;
  await send(a, fromA2);
  await untilShown(a, [fromA2]);
  await untilShown(b, [fromA2]);
  const leaks = [];
  const leakedToC = (await messages(c)).filter((text) => text !== fromC);
  if (leakedToC.length) leaks.push(`page C (${otherRoom}) shows ${JSON.stringify(leakedToC)}`);
  for (const page of [a, b]) {
    if ((await messages(page)).includes(fromC)) leaks.push(`${page.label} shows ${fromC}`);
  }
  problems.push(...leaks);
  if (!leaks.length) console.log("chat.test: rooms are isolated");
} catch (error) {
  failed = true;
  console.error(`chat.test: FAILED: ${error.message}`);
} finally {
  if (problems.length || failed) {
    for (const problem of problems) console.error(`chat.test: FAILED: ${problem}`);
    for (const page of pages) console.error(`chat.test: ${await describe(page)}`);
  }
  await browser.close();
}
if (problems.length || failed) process.exit(1);
console.log("chat.test: passed");
