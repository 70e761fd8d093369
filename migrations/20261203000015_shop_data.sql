-- Imported documents remember the file they came from, so importing it again replaces its
-- sections instead of adding them twice.
ALTER TABLE knowledge_docs ADD COLUMN source text;
CREATE INDEX knowledge_docs_source ON knowledge_docs (tenant_id, source);

-- Products carry the attributes a shop's catalogue has (colour, size…), searched like the
-- description, and when they last changed.
ALTER TABLE products ADD COLUMN attributes jsonb NOT NULL DEFAULT '{}';
ALTER TABLE products ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE products DROP COLUMN tsv;
ALTER TABLE products ADD COLUMN tsv tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector(search_config, name), 'A')
    || setweight(to_tsvector(search_config, description), 'B')
    || setweight(jsonb_to_tsvector(search_config, attributes, '["string"]'), 'B')) STORED;
CREATE INDEX products_tsv ON products USING gin (tsv);
