/**
 * Which backups a retention policy removes. Pure: the listing in, the ids
 * out, so that every rule is tested without a store.
 *
 * - Complete full backups: kept if among the newest `retainFull`, or younger
 *   than `retainDays` (either keeps; with neither given nothing complete is
 *   removed). The newest complete backup is always kept.
 * - An incremental is kept with its chain: a backup any kept backup needs
 *   (its parent, and the parent's parent…) is never removed.
 * - Incomplete (or damaged) backups are removed once older than the grace
 *   period: a younger one may still be uploading.
 */
export interface RetentionInput {
  id: string;
  complete: boolean;
  kind: 'full' | 'incremental' | null;
  parent: string | null;
  started: Date;
}

export interface RetentionPolicy {
  retainFull?: number;
  retainDays?: number;
  graceHours: number;
  now: Date;
}

export interface RetentionDecision {
  remove: { id: string; why: string }[];
  keep: string[];
}

const DAY = 86_400_000;

export function decideRetention(backups: RetentionInput[], p: RetentionPolicy): RetentionDecision {
  const byId = new Map(backups.map((b) => [b.id, b]));
  const complete = backups.filter((b) => b.complete).sort((a, b) => a.started.getTime() - b.started.getTime());
  const fulls = complete.filter((b) => b.kind === 'full');
  const keep = new Set<string>();
  const limitGiven = p.retainFull !== undefined || p.retainDays !== undefined;
  for (const b of complete) {
    if (!limitGiven) keep.add(b.id);
    else if (p.retainDays !== undefined && p.now.getTime() - b.started.getTime() < p.retainDays * DAY) keep.add(b.id);
  }
  if (p.retainFull !== undefined) {
    const kept = fulls.slice(Math.max(0, fulls.length - p.retainFull));
    for (const f of kept) keep.add(f.id);
    // Incrementals newer than the oldest kept full belong to kept chains.
    const from = kept[0]?.started.getTime() ?? Infinity;
    for (const b of complete) if (b.kind === 'incremental' && b.started.getTime() >= from) keep.add(b.id);
  }
  if (complete.length) keep.add(complete[complete.length - 1].id);
  // Whatever a kept backup needs stays too.
  for (const id of [...keep]) {
    let parent = byId.get(id)?.parent ?? null;
    for (let depth = 0; parent && depth < 10_000; depth++) {
      keep.add(parent);
      parent = byId.get(parent)?.parent ?? null;
    }
  }
  const remove: { id: string; why: string }[] = [];
  for (const b of backups) {
    if (keep.has(b.id)) continue;
    if (b.complete) remove.push({ id: b.id, why: 'beyond retention' });
    else if (p.now.getTime() - b.started.getTime() > p.graceHours * 3_600_000) remove.push({ id: b.id, why: 'incomplete, older than the grace period' });
  }
  return { remove, keep: backups.filter((b) => !remove.some((r) => r.id === b.id)).map((b) => b.id) };
}
