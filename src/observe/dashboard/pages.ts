import { escapeHtml } from './http.js';

/** The dashboard's pages; each is one HTML shell that the client script fills from `/api/` and keeps live. */
export type PageKind = 'list' | 'container' | 'schedules' | 'runners';

const TITLES: Record<PageKind, string> = { list: 'Containers', container: 'Container', schedules: 'Schedules', runners: 'Runners' };

function frame(title: string, basePath: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · persistent-task-status</title>
<link rel="stylesheet" href="${basePath}/assets/app.css">${head}
</head><body>
<header class="top"><a class="brand" href="${basePath}/">persistent-task-status</a>
<nav><a href="${basePath}/">Containers</a><a href="${basePath}/schedules">Schedules</a><a href="${basePath}/runners">Runners</a></nav></header>
<div id="banner" class="banner" role="alert" hidden></div>
<main>${body}</main>
</body></html>`;
}

/** The shell of one page: the client script reads `data-*` of `#app` and the CSRF token. */
export function shellPage(p: { kind: PageKind; container: string | null; basePath: string; csrfToken: string; readOnly: boolean }): string {
  const title = p.container ?? TITLES[p.kind];
  const head = `
<meta name="pts-csrf" content="${escapeHtml(p.csrfToken)}">
<script src="${p.basePath}/assets/app.js" defer></script>`;
  const body = `<div id="app" data-view="${p.kind}" data-base="${escapeHtml(p.basePath)}" data-read-only="${p.readOnly}"${
    p.container === null ? '' : ` data-container="${escapeHtml(p.container)}"`
  }><p class="muted">Loading…</p></div>`;
  return frame(title, p.basePath, body, head);
}

/** A page for 400, 401, 403, 404, 503: the status and a one-line reason, never a stack trace. */
export function errorPage(status: number, message: string, basePath: string): string {
  const names: Record<number, string> = { 400: 'Bad request', 401: 'Authentication required', 403: 'Forbidden', 404: 'Not found', 405: 'Method not allowed', 413: 'Too large', 503: 'Unavailable' };
  return frame(`${status}`, basePath, `<section class="error" data-status="${status}"><h1>${status} ${escapeHtml(names[status] ?? 'Error')}</h1>
<p>${escapeHtml(message)}</p><p><a href="${basePath}/">Back to the containers</a></p></section>`);
}
