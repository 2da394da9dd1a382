// Adds up the test reports of every suite into the one closing line CI reads: "N passed, N failed".
// Type-check and lint count as one test each, so a red type-check cannot hide behind green tests.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const [reportDir, typecheck, lint] = process.argv.slice(2);
let passed = 0;
let failed = 0;

const vitestFile = join(reportDir, 'vitest.json');
if (existsSync(vitestFile)) {
  const v = JSON.parse(readFileSync(vitestFile, 'utf8'));
  passed += v.numPassedTests;
  failed += v.numFailedTests;
  if (v.numTotalTests === 0 || (v.success === false && v.numFailedTests === 0)) failed += 1; // suite crashed / no tests
} else {
  console.log('vitest wrote no report');
  failed += 1;
}

const pytestFile = join(reportDir, 'pytest.txt');
if (existsSync(pytestFile)) {
  const text = readFileSync(pytestFile, 'utf8');
  passed += Number(/(\d+) passed/.exec(text)?.[1] ?? 0);
  failed += Number(/(\d+) failed/.exec(text)?.[1] ?? 0) + Number(/(\d+) error/.exec(text)?.[1] ?? 0);
}

for (const [name, code] of [
  ['typecheck', typecheck],
  ['lint', lint],
]) {
  if (code === '0') passed += 1;
  else {
    console.log(`${name} failed`);
    failed += 1;
  }
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
