/**
 * The TypeScript examples of the user docs (README.md, docs/*.md and the `@example` blocks of the
 * API reference), turned into modules that can be type-checked and run, as Go runs its Example
 * functions.
 *
 * An example is written as a user would paste it: imports from "etcd-sdk" first, top-level await.
 * It may use a connected `client` without declaring it. A fence marked `check-only`
 * (```` ```ts check-only ````) is type-checked but not run.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

/** Where the modules are written: ignored by git and outside the type-checked tree. */
export const examplesDir = path.join(repoRoot, ".doc-examples");

/** The endpoint the examples that connect by themselves name; the test points it at its own etcd. */
export const DOCUMENTED_ENDPOINT = "http://127.0.0.1:2379";

const ENTRY_FILES: Record<string, string> = {
  "etcd-sdk": "src/index.js",
  "etcd-sdk/http2": "src/http2.js",
  "etcd-sdk/web": "src/web.js",
  "etcd-sdk/testing": "src/testing.js",
};

export interface DocExample {
  /** Where it is written: file:line of the fence's first code line. */
  source: string;
  code: string;
  runnable: boolean;
}

export interface ExampleModule extends DocExample {
  /** The generated module: its default export runs the example with a client. */
  file: string;
}

const FENCE = /^```ts([^\n]*)\n([\s\S]*?)^```/gm;

function lineOf(text: string, index: number): number {
  return text.slice(0, index).split("\n").length;
}

function fencedExamples(text: string, file: string, lineOffset = 0): DocExample[] {
  return [...text.matchAll(FENCE)].map((m) => ({
    source: `${file}:${lineOf(text, m.index) + 1 + lineOffset}`,
    code: m[2]!,
    runnable: !m[1]!.split(/\s+/).includes("check-only"),
  }));
}

function markdownFiles(): string[] {
  const docs = readdirSync(path.join(repoRoot, "docs"), { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`);
  return ["README.md", "CONTRIBUTING.md", ...docs];
}

function sourceFiles(): string[] {
  return readdirSync(path.join(repoRoot, "src"), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name)));
}

/** The fenced blocks of a doc comment's `@example` tags, without the comment's leading `*`. */
function commentExamples(file: string): DocExample[] {
  const text = readFileSync(path.join(repoRoot, file), "utf8");
  return [...text.matchAll(/\/\*\*[\s\S]*?\*\//g)].flatMap((comment) => {
    if (!comment[0].includes("@example")) return [];
    const startLine = lineOf(text, comment.index) - 1;
    const unstarred = comment[0]
      .split("\n")
      .map((line) => line.replace(/^\s*\/?\*+\/?\s?/, ""))
      .join("\n");
    return fencedExamples(unstarred, file, startLine);
  });
}

export function collectExamples(): DocExample[] {
  return [
    ...markdownFiles().flatMap((file) => fencedExamples(readFileSync(path.join(repoRoot, file), "utf8"), file)),
    ...sourceFiles().flatMap(commentExamples),
  ];
}

/** Whether an example declares its own `client` at its top level. */
function declaresClient(statements: readonly ts.Statement[]): boolean {
  return statements.some(
    (s) => ts.isVariableStatement(s) && s.declarationList.declarations.some((d) => ts.isIdentifier(d.name) && d.name.text === "client"),
  );
}

/**
 * The example as a module whose default export runs it: its imports stay at the top (pointed at
 * the sources), the rest becomes the body of an async function that is given `client`.
 */
function toModule(example: DocExample, endpoint: string): string {
  const parsed = ts.createSourceFile("example.ts", example.code, ts.ScriptTarget.ES2022, true);
  const imports = parsed.statements.filter(ts.isImportDeclaration);
  const body = parsed.statements.filter((s) => !ts.isImportDeclaration(s));
  const fromGenerated = (entry: string) => path.relative(examplesDir, path.join(repoRoot, entry));
  const importText = imports
    .map((s) => {
      const specifier = (s.moduleSpecifier as ts.StringLiteral).text;
      const entry = ENTRY_FILES[specifier];
      return entry ? s.getText().replace(`"${specifier}"`, JSON.stringify(fromGenerated(entry))) : s.getText();
    })
    .join("\n");
  const bodyText = body.map((s) => s.getFullText()).join("").replaceAll(JSON.stringify(DOCUMENTED_ENDPOINT), JSON.stringify(endpoint));
  const parameter = declaresClient(body) ? "_client" : "client";
  return [
    `// Generated from ${example.source}; edit the example there.`,
    importText,
    `import type { Client as ExampleClient } from ${JSON.stringify(fromGenerated(ENTRY_FILES["etcd-sdk"]!))};`,
    `export default async function example(${parameter}: ExampleClient): Promise<void> {`,
    bodyText,
    `}`,
    ``,
  ].join("\n");
}

/** Writes every example as a module under `examplesDir`, with `endpoint` for the documented one. */
export function writeExampleModules(endpoint: string): ExampleModule[] {
  rmSync(examplesDir, { recursive: true, force: true });
  mkdirSync(examplesDir, { recursive: true });
  return collectExamples().map((example, index) => {
    const file = path.join(examplesDir, `${String(index).padStart(3, "0")}-${example.source.replace(/[^A-Za-z0-9]+/g, "-")}.ts`);
    writeFileSync(file, toModule(example, endpoint));
    return { ...example, file };
  });
}

/** Type errors in the generated modules, each as "source: message", under the project's compiler options. */
export function typeErrors(modules: ExampleModule[]): string[] {
  const configFile = ts.readConfigFile(path.join(repoRoot, "tsconfig.json"), (f) => ts.sys.readFile(f));
  const { options } = ts.parseJsonConfigFileContent(configFile.config, ts.sys, repoRoot);
  const program = ts.createProgram(
    modules.map((m) => m.file),
    { ...options, noEmit: true },
  );
  const sourceOf = new Map(modules.map((m) => [path.resolve(m.file), m.source]));
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file ? (sourceOf.get(path.resolve(d.file.fileName)) ?? d.file.fileName) : "(program)";
    const line = d.file && d.start !== undefined ? ` (generated line ${d.file.getLineAndCharacterOfPosition(d.start).line + 1})` : "";
    return `${where}${line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
  });
}
