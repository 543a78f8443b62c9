import { PROBLEMS } from '../problem-codes.js';

/**
 * The OpenAPI document rendered as one self-contained HTML page on the server (no script, no CDN;
 * the CSP allows neither), served at `GET /docs`.
 */
type Json = Record<string, unknown>;

export interface Doc {
  info: { title: string; version: string; description?: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Json>; securitySchemes?: Record<string, Json> };
}

interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: { name: string; in: string; required?: boolean; description?: string; schema?: Json }[];
  requestBody?: { content: Record<string, MediaType> };
  responses: Record<
    string,
    {
      description?: string;
      headers?: Record<string, { description?: string; schema?: Json }>;
      content?: Record<string, MediaType>;
    }
  >;
}

interface MediaType {
  schema?: Json;
  examples?: Record<string, { summary?: string; value: unknown }>;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The few bits of Markdown the descriptions use: `code`. */
function prose(value: string | undefined): string {
  if (!value) return '';
  return escapeHtml(value).replace(/`([^`]+)`/g, '<code>$1</code>');
}

function anchor(...parts: string[]): string {
  return parts
    .join('-')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
}

/** A schema as a one-line type; component references become links. */
function typeOf(schema: Json | undefined): string {
  if (!schema) return '';
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const name = ref.split('/').pop() ?? ref;
    return `<a href="#schema-${anchor(name)}">${escapeHtml(name)}</a>`;
  }
  if (Array.isArray(schema.enum))
    return schema.enum.map((v) => `<code>${escapeHtml(JSON.stringify(v))}</code>`).join(' | ');
  const type = Array.isArray(schema.type)
    ? schema.type.join(' | ')
    : typeof schema.type === 'string'
      ? schema.type
      : 'any';
  if (type === 'array') return `${typeOf(schema.items as Json | undefined)}[]`;
  return escapeHtml(type);
}

function renderSchema(schema: Json | undefined): string {
  if (!schema) return '';
  if (typeof schema.$ref === 'string' || schema.type !== 'object') {
    return `<p>Schema: ${typeOf(schema)}</p>`;
  }
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  const required = new Set((schema.required ?? []) as string[]);
  const rows = Object.entries(properties)
    .map(
      ([name, prop]) =>
        `<tr><td><code>${escapeHtml(name)}</code>${required.has(name) ? '' : ' <span class="opt">optional</span>'}</td>` +
        `<td>${typeOf(prop)}</td><td>${prose(typeof prop.description === 'string' ? prop.description : constraint(prop))}</td></tr>`,
    )
    .join('');
  return `<table><thead><tr><th>Field</th><th>Type</th><th>Notes</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function constraint(schema: Json): string {
  const bits: string[] = [];
  for (const key of ['pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'format']) {
    if (schema[key] !== undefined) bits.push(`${key} ${JSON.stringify(schema[key])}`);
  }
  return bits.join(', ');
}

function renderExamples(media: MediaType): string {
  return Object.entries(media.examples ?? {})
    .map(([name, ex]) => {
      const text = typeof ex.value === 'string' ? ex.value : JSON.stringify(ex.value, null, 2);
      return `<details><summary>Example <code>${escapeHtml(name)}</code>${ex.summary ? `: ${prose(ex.summary)}` : ''}</summary><pre>${escapeHtml(text)}</pre></details>`;
    })
    .join('');
}

function renderContent(content: Record<string, MediaType> | undefined): string {
  return Object.entries(content ?? {})
    .map(
      ([type, media]) =>
        `<p class="media">${escapeHtml(type)}</p>${renderSchema(media.schema)}${renderExamples(media)}`,
    )
    .join('');
}

function renderOperation(path: string, method: string, op: Operation): string {
  const id = anchor(method, path);
  const security = (op.security ?? [])
    .map(
      (s) =>
        Object.keys(s)
          .map((k) => `<code>${escapeHtml(k)}</code>`)
          .join(' + ') || 'none',
    )
    .join(' or ');
  const params = op.parameters?.length
    ? `<h4>Parameters</h4><table><thead><tr><th>Name</th><th>In</th><th>Type</th><th>Notes</th></tr></thead><tbody>${op.parameters
        .map(
          (p) =>
            `<tr><td><code>${escapeHtml(p.name)}</code>${p.required ? '' : ' <span class="opt">optional</span>'}</td><td>${escapeHtml(p.in)}</td>` +
            `<td>${typeOf(p.schema)}</td><td>${prose(p.description)}</td></tr>`,
        )
        .join('')}</tbody></table>`
    : '';
  const body = op.requestBody ? `<h4>Request body</h4>${renderContent(op.requestBody.content)}` : '';
  const responses = Object.entries(op.responses)
    .map(([status, r]) => {
      const headers = Object.entries(r.headers ?? {})
        .map(([name, h]) => `<li><code>${escapeHtml(name)}</code> ${prose(h.description)}</li>`)
        .join('');
      return `<div class="response"><h5><span class="status s${status.charAt(0)}">${escapeHtml(status)}</span> ${prose(r.description)}</h5>${headers ? `<ul>${headers}</ul>` : ''}${renderContent(r.content)}</div>`;
    })
    .join('');
  return `<section class="op" id="${id}">
<h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code> <span class="summary">${prose(op.summary)}</span></h3>
${op.description ? `<p>${prose(op.description)}</p>` : ''}
${security ? `<p class="auth">Authentication: ${security}</p>` : ''}
${params}${body}<h4>Responses</h4>${responses}
</section>`;
}

function renderProblemTable(): string {
  const rows = Object.entries(PROBLEMS)
    .map(([code, p]) => `<tr><td><code>${code}</code></td><td>${p.status}</td><td>${prose(p.when)}</td></tr>`)
    .join('');
  return `<section id="errors"><h2>Error codes</h2><p>Every error is <code>application/problem+json</code> (RFC 9457) with a stable <code>code</code>; see the <a href="#schema-problem">Problem</a> schema.</p>
<table><thead><tr><th>code</th><th>Status</th><th>When</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

export function renderDocs(doc: Doc): string {
  const ops = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method, op, tag: op.tags?.[0] ?? 'Other' })),
  );
  const tags = doc.tags ?? [];
  const toc = tags
    .map(
      (t) =>
        `<li>${escapeHtml(t.name)}<ul>${ops
          .filter((o) => o.tag === t.name)
          .map(
            (o) =>
              `<li><a href="#${anchor(o.method, o.path)}">${o.method.toUpperCase()} ${escapeHtml(o.path)}</a></li>`,
          )
          .join('')}</ul></li>`,
    )
    .join('');
  const sections = tags
    .map(
      (t) =>
        `<section id="tag-${anchor(t.name)}"><h2>${escapeHtml(t.name)}</h2><p>${prose(t.description)}</p>${ops
          .filter((o) => o.tag === t.name)
          .map((o) => renderOperation(o.path, o.method, o.op))
          .join('')}</section>`,
    )
    .join('');
  const schemes = Object.entries(doc.components?.securitySchemes ?? {})
    .map(
      ([name, s]) =>
        `<tr><td><code>${escapeHtml(name)}</code></td><td>${prose(typeof s.description === 'string' ? s.description : '')}</td></tr>`,
    )
    .join('');
  const schemas = Object.entries(doc.components?.schemas ?? {})
    .map(
      ([name, s]) =>
        `<section class="schema" id="schema-${anchor(name)}"><h3>${escapeHtml(name)}</h3><p>${prose(typeof s.description === 'string' ? s.description : '')}</p>${renderSchema(s)}</section>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(doc.info.title)} API reference</title>
<style>${DOCS_CSS}</style></head>
<body><main>
<h1>${escapeHtml(doc.info.title)} <small>API ${escapeHtml(doc.info.version)}</small></h1>
<p>${prose(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<nav aria-label="Contents"><h2>Contents</h2><ul>${toc}<li><a href="#auth">Authentication</a></li><li><a href="#errors">Error codes</a></li><li><a href="#schemas">Schemas</a></li></ul></nav>
${sections}
<section id="auth"><h2>Authentication</h2><table><tbody>${schemes}</tbody></table></section>
${renderProblemTable()}
<section id="schemas"><h2>Schemas</h2>${schemas}</section>
</main></body></html>`;
}

const DOCS_CSS = `
:root { color: #1f2328; background: #fff; font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; line-height: 1.5; }
main { max-width: 62rem; margin: 0 auto; padding: 1rem; }
h1 small { font-weight: 400; color: #57606a; font-size: 1rem; }
h2 { border-bottom: 1px solid #d8dee4; padding-bottom: 0.3rem; margin-top: 2.5rem; }
h3 { font-size: 1.1rem; } h4 { margin: 1rem 0 0.3rem; } h5 { font-size: 1rem; margin: 0.8rem 0 0.3rem; font-weight: 600; }
.op { border: 1px solid #d8dee4; border-radius: 0.5rem; padding: 0 1rem 1rem; margin: 1rem 0; }
.method { display: inline-block; min-width: 4rem; text-align: center; border-radius: 0.3rem; color: #fff; font-size: 0.85rem; padding: 0.1rem 0.4rem; }
.method.get { background: #0a5ca8; } .method.post { background: #1a7f37; }
.summary { font-weight: 400; color: #57606a; }
.status { font-family: ui-monospace, Menlo, Consolas, monospace; padding: 0 0.35rem; border-radius: 0.25rem; background: #eaeef2; }
.status.s2 { background: #dafbe1; } .status.s4 { background: #fff1e5; } .status.s5 { background: #ffebe9; }
.opt { color: #57606a; font-size: 0.85rem; }
.auth, .media { color: #57606a; font-size: 0.9rem; margin: 0.3rem 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.92rem; margin: 0.3rem 0; }
th, td { text-align: left; border-bottom: 1px solid #eaeef2; padding: 0.3rem 0.5rem; vertical-align: top; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em; background: #f6f8fa; padding: 0 0.2rem; border-radius: 0.2rem; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; border-radius: 0.4rem; font-size: 0.85rem; }
details { margin: 0.3rem 0; } summary { cursor: pointer; }
a { color: #0a5ca8; }
:focus-visible { outline: 3px solid #c98a00; outline-offset: 2px; }
`;
