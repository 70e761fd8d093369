-- What operators made of earlier drafts (approved, edited, rejected with a reason) guides
-- the drafts of similar messages: samples are found by full-text search on the customer's
-- message, in the tenant's text-search configuration.
ALTER TABLE training_samples
    ADD COLUMN search_config regconfig NOT NULL DEFAULT 'english',
    ADD COLUMN tsv tsvector GENERATED ALWAYS AS (to_tsvector(search_config, customer_message)) STORED;
CREATE INDEX training_samples_tsv ON training_samples USING gin (tsv);
UPDATE training_samples s SET search_config = t.text_search_config
FROM tenants t WHERE t.id = s.tenant_id;
