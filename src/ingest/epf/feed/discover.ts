/**
 * Where the drops are in each feed layout, and which of them to ingest
 * (EPF.md: server layout, schedule). Pure functions over listings.
 */
import type { ListingEntry } from './listing.js';

/** Feed layout (EPF.md: v5 current, v3 legacy). */
export type EpfLayout = 'v5' | 'v3';

/** One remote archive. */
export interface FeedFile {
  url: string;
  /** File name, e.g. 'application.tbz' (v5) or 'itunes20130130.tbz' (v3). */
  name: string;
  /** Feed group: 'itunes', 'pricing', 'popularity', 'match', ... */
  group: string;
  /** Export date, 'YYYYMMDD'. */
  date: string;
  kind: 'full' | 'incremental';
  /** Drop folder/name '<group><date>', the folder inside the archive (EPF.md: inside a .tbz). */
  drop: string;
  /** v5: the table this archive holds ('application'); v3 archives hold every table of the group. */
  table?: string;
  md5Url: string;
  /** True once the `.md5` is listed next to the file (EPF.md: wait for every file and its .md5). */
  ready: boolean;
  /** Bytes, from HEAD (set by `plan()`). */
  size?: number;
  /** From HEAD (set by `plan()`). */
  etag?: string;
  /** Why this file cannot be ingested now (its HEAD or `.md5` failed); the rest of the slot goes on. */
  error?: string;
}

/** What to ingest now. */
export interface EpfPlan {
  /** Per group, every file of the newest full export whose files are all ready; by date, group, name. */
  full: FeedFile[];
  /** Incrementals dated after their group's full, in date order, up to the first drop not yet ready. */
  incrementals: FeedFile[];
  /** Files newer than the plan that are not ready yet (their `.md5` is missing), or held back behind them. */
  waiting: FeedFile[];
  /** Listing pages that failed (one slow or broken drop folder does not stop the others). */
  failedListings: Array<{ url: string; reason: string }>;
}

/** `<group><YYYYMMDD>` (v5 drop folders, v3 archive names without '.tbz'). */
export const DROP_NAME = /^([a-z][a-z_]*?)(\d{8})$/;
const DATE = /^\d{8}$/;

/** Folders of a listing that are drops '<group><date>' (v5). */
export function dropFolders(entries: ListingEntry[]): { entry: ListingEntry; group: string; date: string }[] {
  return entries.flatMap((entry) => {
    const m = entry.isDir ? DROP_NAME.exec(entry.name) : null;
    return m ? [{ entry, group: m[1]!, date: m[2]! }] : [];
  });
}

/** Folders of a listing named 'YYYYMMDD' (v3 full/ and incremental/; 'current' is skipped). */
export function dateFolders(entries: ListingEntry[]): { entry: ListingEntry; date: string }[] {
  return entries.flatMap((entry) => (entry.isDir && DATE.test(entry.name) ? [{ entry, date: entry.name }] : []));
}

/**
 * The `.tbz` files of one listing, with `ready` set from the `.md5` names next to
 * them. `describe` names group/date/table from the file name (null skips it).
 */
export function tbzFiles(
  entries: ListingEntry[],
  kind: FeedFile['kind'],
  describe: (name: string) => { group: string; date: string; table?: string } | null,
): FeedFile[] {
  const md5 = new Set(entries.filter((e) => !e.isDir && e.name.endsWith('.md5')).map((e) => e.name));
  return entries.flatMap((e) => {
    if (e.isDir || !e.name.endsWith('.tbz')) return [];
    const d = describe(e.name);
    if (!d) return [];
    const file: FeedFile = {
      url: e.url, name: e.name, group: d.group, date: d.date, kind, drop: `${d.group}${d.date}`,
      md5Url: `${e.url}.md5`, ready: md5.has(`${e.name}.md5`),
    };
    if (d.table !== undefined) file.table = d.table;
    return [file];
  });
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const byDateGroupName = (a: FeedFile, b: FeedFile) => cmp(a.date, b.date) || cmp(a.group, b.group) || cmp(a.name, b.name);

/**
 * Choose what to ingest from every listed file: per group, the newest full
 * export whose files are all ready, then that group's incrementals dated after
 * it in date order, stopping at the first incremental drop not fully ready
 * (applying a later one first would be wrong: incrementals are upserts).
 */
export function planFiles(files: FeedFile[]): EpfPlan {
  const plan: EpfPlan = { full: [], incrementals: [], waiting: [], failedListings: [] };
  const groups = [...new Set(files.map((f) => f.group))].sort();
  for (const group of groups) {
    const drops = (kind: FeedFile['kind']) => {
      const byDate = new Map<string, FeedFile[]>();
      for (const f of files) if (f.group === group && f.kind === kind) byDate.set(f.date, [...(byDate.get(f.date) ?? []), f]);
      return [...byDate.entries()].sort(([a], [b]) => cmp(a, b));
    };
    const fulls = drops('full');
    const chosen = [...fulls].reverse().find(([, fs]) => fs.every((f) => f.ready));
    for (const [date, fs] of fulls) if (!chosen || date > chosen[0]) plan.waiting.push(...fs);
    if (!chosen) continue;
    plan.full.push(...chosen[1]);
    let blocked = false;
    for (const [date, fs] of drops('incremental')) {
      if (date <= chosen[0]) continue;
      blocked ||= !fs.every((f) => f.ready);
      (blocked ? plan.waiting : plan.incrementals).push(...fs);
    }
  }
  plan.full.sort(byDateGroupName);
  plan.incrementals.sort(byDateGroupName);
  plan.waiting.sort(byDateGroupName);
  return plan;
}
