-- The languages a shop answers in besides its first (`language`): a customer who writes
-- in one of them is answered in it.
ALTER TABLE tenants ADD COLUMN languages text[] NOT NULL DEFAULT '{}';
