import type { ContainerStatusReport } from '../../status/container-status.js';
import type { TaskStatus } from '../../store/types.js';
import { formatPercent, TASK_STATUS_ORDER } from './format.js';

/** Fill, stroke and text colours of each status in the graph. */
export const STATUS_STYLES: Record<TaskStatus, string> = {
  pending: 'fill:#f5f5f5,stroke:#9e9e9e,color:#424242',
  running: 'fill:#dbeafe,stroke:#2563eb,color:#1e3a8a',
  succeeded: 'fill:#dcfce7,stroke:#16a34a,color:#14532d',
  failed: 'fill:#fee2e2,stroke:#dc2626,color:#7f1d1d',
  skipped: 'fill:#fef9c3,stroke:#ca8a04,color:#713f12',
  cancelled: 'fill:#e5e7eb,stroke:#6b7280,color:#374151,stroke-dasharray:4 2',
};

/**
 * Escapes text for a double-quoted Mermaid label: every character outside a
 * small safe set (letters, digits, space and harmless punctuation) becomes a
 * Mermaid entity code `#<decimal>;`, so quotes, `#`, `<`, `>`, `&`, backticks
 * and line breaks cannot end the label or inject markup.
 */
export function escapeMermaidLabel(text: string): string {
  let out = '';
  for (const ch of text) {
    out += /^[\p{L}\p{N} _\-:/,+=@!?*%~^()[\]{}'.$]$/u.test(ch) ? ch : `#${ch.codePointAt(0)};`;
  }
  return out;
}

/** The container's DAG as a Mermaid `flowchart TD`, nodes labelled with task name and status. */
export function renderMermaid(r: ContainerStatusReport): string {
  const ids = new Map(r.tasks.map((t, i) => [t.name, `t${i}`]));
  const lines = ['flowchart TD', `  %% container ${escapeMermaidLabel(r.name)}: ${r.status}, ${formatPercent(r.percentComplete)} done`];
  for (const t of r.tasks) {
    const state = t.runnerLost
      ? `runner lost ${formatPercent(t.percentComplete)}`
      : t.status === 'running'
        ? `running ${formatPercent(t.percentComplete)}`
        : t.status;
    lines.push(`  ${ids.get(t.name)}["${escapeMermaidLabel(t.name)}<br/>${state}"]:::${t.status}`);
  }
  for (const t of r.tasks) {
    for (const dep of t.dependsOn) {
      const from = ids.get(dep);
      if (from) lines.push(`  ${from} --> ${ids.get(t.name)}`);
    }
  }
  for (const status of TASK_STATUS_ORDER) lines.push(`  classDef ${status} ${STATUS_STYLES[status]}`);
  return `${lines.join('\n')}\n`;
}
