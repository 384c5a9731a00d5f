/**
 * Least-recently-used order kept cheaply in a Map's insertion order: an entry moves to the recent end
 * at most once per second when used, so the per-datagram cost is a timestamp store, and the front of
 * the Map is (to within a second) the least recently used. Shared by the relay's session table and
 * the bind-source socket cache.
 * @module
 */

/** The two timestamps an entry carries (milliseconds, any monotonic-enough clock). */
export interface Recency {
  /** Last use. */
  lastActive: number;
  /** Last move to the recent end of the Map. */
  lastTouched: number;
}

/** How stale the Map order may get, in milliseconds. */
const MOVE_EVERY_MS = 1000;

/**
 * Mark `entry` (stored under `key`) used at `now`.
 * @example touchRecency(sessions, key, session, Date.now());
 */
export function touchRecency<K, E extends Recency>(map: Map<K, E>, key: K, entry: E, now: number): void {
  entry.lastActive = now;
  if (now - entry.lastTouched > MOVE_EVERY_MS) {
    entry.lastTouched = now;
    map.delete(key);
    map.set(key, entry);
  }
}

/**
 * Hand every entry idle for `idleMs` or more to `expire` (which removes it), walking from the old end
 * and stopping at the first recently moved one. Entries used since their last move, or that `keep`
 * spares, are moved to the recent end instead.
 * @example sweepIdle(sockets, Date.now(), 60_000, (key, s) => release(key, s), (s) => s.waiting);
 */
export function sweepIdle<K, E extends Recency>(
  map: Map<K, E>,
  now: number,
  idleMs: number,
  expire: (key: K, entry: E) => void,
  keep?: (entry: E) => boolean,
): void {
  for (const [key, entry] of map) {
    if (now - entry.lastTouched < idleMs) break;
    if (now - entry.lastActive < idleMs || keep?.(entry)) {
      entry.lastTouched = now;
      map.delete(key);
      map.set(key, entry);
      continue;
    }
    expire(key, entry);
  }
}
