-- Snoozing a conversation until a time: it leaves the working tabs until `snoozed_until`
-- (Unix ms) passes or the customer writes (`snooze_woke_at`, set by the ingest of their
-- message). Waking by time writes nothing: the list compares with the clock. Both are
-- cleared when an agent deals with the conversation (a reply, a close, "Wake now").
ALTER TABLE conversations ADD COLUMN snoozed_until INTEGER;
ALTER TABLE conversations ADD COLUMN snooze_woke_at INTEGER;
-- The Snoozed tab (soonest wake first) and the live stream's "which snoozes just ended".
CREATE INDEX conversations_snoozed ON conversations(snoozed_until) WHERE snoozed_until IS NOT NULL;
-- The unread counts per tab read only `conversations_unread`: it carries the snooze
-- columns the working tabs now filter on.
DROP INDEX conversations_unread;
CREATE INDEX conversations_unread ON conversations(last_inbound_id, owner, assigned_to, closed_at, snoozed_until, snooze_woke_at) WHERE last_inbound_id > 0;
