-- Typo-tolerant retrieval: every word a tenant's documents and products contain, so a
-- customer's misspelt word ("watter", "stok") is read as the nearest word the shop really
-- uses (trigram candidates, then edit distance), before the full-text search. pg_trgm and
-- fuzzystrmatch ship with PostgreSQL and are trusted extensions: the database's owner may
-- create them.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;

CREATE TABLE search_words (
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    word      text NOT NULL,
    PRIMARY KEY (tenant_id, word)
);
CREATE INDEX search_words_trgm ON search_words USING gin (word gin_trgm_ops);

-- The words of a text as the vocabulary keeps them: lower case, letters and digits, three
-- characters or more (shorter ones are too ambiguous to correct towards).
CREATE FUNCTION search_words_of(t text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE AS $$
    SELECT DISTINCT w FROM regexp_split_to_table(lower(t), '[^[:alnum:]]+') AS w
    WHERE length(w) >= 3
$$;

-- Words are added as documents and products are written; a word whose last use was
-- removed stays, which at worst corrects a typo towards a word no longer found.
CREATE FUNCTION remember_search_words() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'knowledge_docs' THEN
        INSERT INTO search_words (tenant_id, word)
        SELECT NEW.tenant_id, w FROM search_words_of(NEW.title || ' ' || NEW.keywords || ' ' || NEW.body) w
        ON CONFLICT DO NOTHING;
    ELSE
        INSERT INTO search_words (tenant_id, word)
        SELECT NEW.tenant_id, w FROM search_words_of(NEW.name || ' ' || NEW.description || ' ' ||
               COALESCE((SELECT string_agg(value, ' ') FROM jsonb_each_text(NEW.attributes)), '')) w
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER knowledge_docs_words AFTER INSERT OR UPDATE ON knowledge_docs
    FOR EACH ROW EXECUTE FUNCTION remember_search_words();
CREATE TRIGGER products_words AFTER INSERT OR UPDATE ON products
    FOR EACH ROW EXECUTE FUNCTION remember_search_words();

INSERT INTO search_words (tenant_id, word)
SELECT tenant_id, w FROM knowledge_docs, search_words_of(title || ' ' || keywords || ' ' || body) w
ON CONFLICT DO NOTHING;
INSERT INTO search_words (tenant_id, word)
SELECT tenant_id, w FROM products, search_words_of(name || ' ' || description) w
ON CONFLICT DO NOTHING;
