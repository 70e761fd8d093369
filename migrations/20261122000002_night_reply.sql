-- The night (as WorkingHours::night_key names it) of the conversation's last automatic
-- night reply: night mode AUTO_REPLY answers once per conversation per night.
ALTER TABLE conversations ADD COLUMN night_reply_key text;
