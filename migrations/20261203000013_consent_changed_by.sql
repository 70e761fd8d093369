-- The customer message whose stop or start word last changed the consent. The change is
-- stored with the message itself, so a reply cannot slip out between a STOP being stored
-- and being applied; the confirmation follows later, and only for the message that
-- changed it.
ALTER TABLE consents ADD COLUMN changed_by uuid;
