-- A new draft supersedes its conversation's waiting replies, and a STOP drops them: both
-- look up the pending rows of one conversation, which without this index meant reading
-- every pending row of every tenant (slower the more replies wait for their human delay).
CREATE INDEX outbox_pending_conversation ON outbox (conversation_id) WHERE status = 'pending';
