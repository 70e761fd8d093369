-- A user is a shop's: the same address may have an account in several shops, and no shop
-- learns that another has one.
ALTER TABLE users DROP CONSTRAINT users_email_key;
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, email);
CREATE INDEX users_email ON users (email);
