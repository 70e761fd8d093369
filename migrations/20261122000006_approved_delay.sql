-- Operator-approved sends go out at once, unless the tenant wants them to wait a human-like
-- delay too (so that an approved reply does not arrive faster than a person could type).
ALTER TABLE tenants ADD COLUMN delay_approved_sends boolean NOT NULL DEFAULT false;
