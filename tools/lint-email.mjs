// Lint built email HTML against caniemail data (doiuse-email). Usage:
//   node tools/lint-email.mjs templates/email-features.json FILE.html...
// Exit 0 when every unsupported feature is a listed progressive enhancement, 1 otherwise,
// 2 on bad usage. One line per problem: "FILE: FEATURE is not supported by CLIENT, ...".
import fs from 'node:fs';
import process from 'node:process';
import { doIUseEmail } from 'doiuse-email';

const [featuresFile, ...files] = process.argv.slice(2);
if (!featuresFile || files.length === 0) {
  console.error('usage: node tools/lint-email.mjs FEATURES.json FILE.html...');
  process.exit(2);
}
const { clients, progressive } = JSON.parse(fs.readFileSync(featuresFile, 'utf8'));
let problems = 0;
for (const file of files) {
  let html;
  try {
    html = fs.readFileSync(file, 'utf8');
  } catch (error) {
    console.error(`${file}: cannot read it (${error.code})`);
    process.exit(2);
  }
  const result = doIUseEmail(html, { emailClients: clients });
  const byFeature = new Map();
  for (const error of result.errors ?? []) {
    const match = /^`(.+?)` is not supported by `(.+?)`/.exec(error);
    const [feature, client] = match ? [match[1], match[2]] : [error, '?'];
    if (feature in progressive) continue;
    byFeature.set(feature, new Set([...(byFeature.get(feature) ?? []), client]));
  }
  for (const [feature, list] of byFeature) {
    problems += 1;
    console.log(`${file}: ${feature} is not supported by ${[...list].join(', ')}`);
  }
}
console.log(`lint-email: ${files.length} file(s), ${problems} unsupported feature(s) not listed as progressive enhancements`);
process.exit(problems ? 1 : 0);
