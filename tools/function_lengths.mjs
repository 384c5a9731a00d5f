#!/usr/bin/env node
// Functions longer than a limit in the given source trees: a reader should see a function whole.
// A function starts at a line that declares one (function NAME(, const NAME = (…) =>, NAME(…) { as a
// method) and ends at the line whose indentation closes it. Usage: node tools/function_lengths.mjs [--max N] DIR…
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const args = process.argv.slice(2);
let max = 80;
const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--max") max = Number(args[++i]);
  else roots.push(args[i]);
}
const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== "node_modules" && name !== "dist") walk(p);
    } else if (p.endsWith(".ts") && !p.endsWith(".test.ts") && !p.endsWith(".d.ts")) files.push(p);
  }
};
for (const r of roots) walk(r);

const START =
  /^(\s*)(?:export\s+)?(?:async\s+)?(?:function\s*\*?\s*(\w+)|(?:const|let)\s+(\w+)\s*=\s*(?:async\s*)?(?:\([^)]*\)|\w+)\s*(?::[^=]+)?=>\s*\{|(?:async\s+)?(\w+)\s*\([^)]*\)\s*(?::[^{]+)?\{)\s*$/;
const long = [];
for (const f of files) {
  const lines = readFileSync(f, "utf8").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = START.exec(lines[i]) ?? (/^(\s*)(?:export\s+)?(?:async\s+)?function\s+(\w+)/.exec(lines[i]));
    if (!m) continue;
    const name = m[2] ?? m[3] ?? m[4];
    if (!name || ["if", "for", "while", "switch", "catch", "return"].includes(name)) continue;
    const indent = m[1].length;
    // The closing line: the first later line at the same indentation that starts with "}" or ")".
    let end = i + 1;
    while (end < lines.length && !(lines[end].length - lines[end].trimStart().length === indent && /^[})]/.test(lines[end].trimStart()))) end++;
    const length = end - i + 1;
    if (length > max) long.push({ at: `${f}:${i + 1}`, name, length });
  }
}
for (const l of long.sort((a, b) => b.length - a.length)) console.log(`${l.length}\t${l.name}\t${l.at}`);
if (long.length > 0) {
  console.error(`${long.length} function(s) over ${max} lines`);
  process.exit(1);
}
