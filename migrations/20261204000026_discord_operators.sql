-- The operators' room may be a Discord channel as well as a Telegram chat: a notice's
-- message id is the platform's, and operators link a Discord account to press its buttons.
ALTER TABLE operator_notifications RENAME COLUMN telegram_message_id TO notice_message_id;
ALTER TABLE users ADD COLUMN discord_user_id bigint UNIQUE;
