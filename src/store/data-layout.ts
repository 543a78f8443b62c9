/**
 * The version of how this code lays out its data in Redis (payment hashes, the list index, the
 * scheduler's sets). Processes of different versions misread each other's data, so a process refuses
 * to start beside a live process of another version (store/lua/register-key-holder-2.lua), and a
 * release that changes the layout is deployed stop-the-world (README "Upgrading").
 *
 * Bump it with any change that an earlier release would misread or that would misread an earlier
 * release's data.
 * - 1: the compact payment hash and the bucketed list index, one due set per scheduler shard
 *   (processes from before the version was recorded count as 1);
 * - 2: due work in buckets per shard (an older worker never sees it; an older API schedules into
 *   the single due set); and the compact payment hash changes: the status as one letter, no `u`
 *   while it equals `t`, a 22-character check value, event entries without ids (a layout-1 process
 *   misreads all four). A layout-1 process is kept out by a guard entry (register-key-holder-2.lua).
 */
export const DATA_LAYOUT_VERSION = 2;
