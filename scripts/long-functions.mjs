// Lists the functions of src/ and web/src/ whose own body is over 60 lines (blank lines, comments and the bodies of
// the functions nested in it not counted: a factory made of small closures is as readable as a class), unless the
// comment just above the function says why with a line starting "Long: ". `npm run lint` runs it.
//   node scripts/long-functions.mjs [--max 60] [dirs…]
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const args = process.argv.slice(2);
const maxAt = args.indexOf('--max');
const MAX = maxAt >= 0 ? Number(args.splice(maxAt, 2)[1]) : 60;
const roots = args.length > 0 ? args : ['src', 'web/src'];
const root = join(import.meta.dirname, '..');

function* files(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) yield path;
  }
}

const isFunction = (n) =>
  ts.isFunctionDeclaration(n) ||
  ts.isMethodDeclaration(n) ||
  ts.isFunctionExpression(n) ||
  ts.isArrowFunction(n) ||
  ts.isConstructorDeclaration(n) ||
  ts.isGetAccessor(n) ||
  ts.isSetAccessor(n);

/** Lines of `node` that hold code of its own: not blank, not comment-only, not inside a nested function. */
function ownLines(node, source, text) {
  const lineOf = (pos) => source.getLineAndCharacterOfPosition(pos).line;
  const lines = new Set();
  const visit = (n, top) => {
    if (!top && isFunction(n)) {
      lines.add(lineOf(n.getStart(source))); // the line where the nested function starts is the parent's
      return;
    }
    if (n.getChildCount(source) === 0) {
      for (let l = lineOf(n.getStart(source)); l <= lineOf(n.getEnd()); l++) lines.add(l);
      return;
    }
    n.forEachChild((c) => visit(c, false));
  };
  visit(node, true);
  return [...lines].filter((l) => text.split('\n')[l]?.trim() !== '').length;
}

function reasonAbove(node, text) {
  const ranges = ts.getLeadingCommentRanges(text, node.getFullStart()) ?? [];
  const parentRanges =
    node.parent && (ts.isVariableDeclaration(node.parent) || ts.isPropertyAssignment(node.parent))
      ? (ts.getLeadingCommentRanges(text, node.parent.parent?.parent?.getFullStart?.() ?? 0) ?? [])
      : [];
  return [...ranges, ...parentRanges].some((r) => /^\s*(\*|\/\/)?\s*Long: /m.test(text.slice(r.pos, r.end)));
}

const found = [];
for (const dir of roots) {
  for (const path of files(join(root, dir))) {
    const text = readFileSync(path, 'utf8');
    const source = ts.createSourceFile(
      path,
      text,
      ts.ScriptTarget.Latest,
      true,
      path.endsWith('x') ? ts.ScriptKind.TSX : ts.ScriptKind.TS,
    );
    const visit = (n) => {
      if (isFunction(n) && n.body) {
        const count = ownLines(n.body, source, text);
        if (count > MAX && !reasonAbove(n, text)) {
          const name =
            n.name?.getText(source) ??
            (ts.isVariableDeclaration(n.parent) ? n.parent.name.getText(source) : '(anonymous)');
          found.push(
            `${relative(root, path)}:${source.getLineAndCharacterOfPosition(n.getStart(source)).line + 1}  ${name}: ${count} lines`,
          );
        }
      }
      n.forEachChild(visit);
    };
    visit(source);
  }
}
if (found.length > 0) {
  console.error(
    `Functions over ${MAX} lines of their own (split them by job, or say why above them with "Long: …"):\n  ${found.join('\n  ')}`,
  );
  process.exit(1);
}
