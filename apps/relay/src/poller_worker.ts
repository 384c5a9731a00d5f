/**
 * The poller's Worker as an entry point beside main.ts: a single-file executable holds each entry
 * point by its place relative to the others, and the poller asks for `./poller_worker.*` beside the
 * code that starts it, which in one bundle is main's. `npm run compile` builds it with main.ts.
 * @module
 */
import "@anysrc/sys/poller-worker";
