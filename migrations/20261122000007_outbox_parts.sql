-- A reply longer than the platform's limit goes out in parts. A retry resumes after the
-- last part that went out, so the customer never sees a part twice; the platform id of the
-- first part is the reply's id.
ALTER TABLE outbox
    ADD COLUMN parts_sent integer NOT NULL DEFAULT 0,
    ADD COLUMN first_external_id text;
