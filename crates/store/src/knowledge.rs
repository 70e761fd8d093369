use std::collections::BTreeMap;

use switchboard_core::knowledge::{Example, Product, Source};
use uuid::Uuid;

use crate::{Result, Store};

/// Terms of the question; matches of a document; ranked by coverage, then by ts_rank_cd.
/// (`n` counts the terms; the knowledge search weighs them instead: `WEIGHTED`.)
const SEARCH: &str = "
    WITH q AS (
        SELECT t.text_search_config AS cfg,
               NULLIF(replace(plainto_tsquery(t.text_search_config, $2)::text, '&', '|'), '') AS any_term
        FROM tenants t WHERE t.id = $1),
    terms AS (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(q.cfg, $2))) AS term FROM q),
    n AS (SELECT count(*)::float8 AS total FROM terms)";

/// The knowledge search's terms with their weights, for ordering sources: a term few of the
/// shop's documents and products contain says more about what the customer wants than one
/// most contain ("lamp" in a lamp shop), so each weighs its inverse document frequency. (The
/// coverage a source reports, the engine's similarity, stays the plain share of terms: its
/// thresholds are calibrated on that.) A term no source contains
/// weighs as much as the rarest that one does, so the small talk around a question does not
/// bury it.
const WEIGHTED: &str = ",
    size AS (SELECT ((SELECT count(*) FROM knowledge_docs WHERE tenant_id = $1)
                   + (SELECT count(*) FROM products WHERE tenant_id = $1))::float8 AS n),
    weights AS (
        SELECT terms.term, ln((size.n + 1) / (0.5 + greatest(1,
              (SELECT count(*) FROM knowledge_docs k
               WHERE k.tenant_id = $1 AND k.tsv @@ quote_literal(terms.term)::tsquery)
            + (SELECT count(*) FROM products p
               WHERE p.tenant_id = $1 AND p.tsv @@ quote_literal(terms.term)::tsquery)))) AS w
        FROM terms, size),
    total AS (SELECT sum(w) AS w FROM weights)";

/// The question with each word the shop's texts never use replaced by the nearest word they
/// do (a typo: one edit away for words of five letters, two for longer ones, sharing
/// a quarter of their trigrams; the closest, then the most alike; shorter words are too
/// often real words, "back" is not "black"), so "is teh watter botle in stok" searches for the water bottle's stock.
const CORRECTED: &str = "
    SELECT COALESCE(string_agg(COALESCE(
        (SELECT s.word FROM search_words s
         WHERE s.tenant_id = $1 AND length(t.w) BETWEEN 5 AND 40
           -- A stop word (\"what\", \"there\") is nobody's typo.
           AND to_tsvector(cfg.c, t.w) <> ''::tsvector
           AND NOT EXISTS (SELECT 1 FROM search_words k WHERE k.tenant_id = $1 AND k.word = t.w)
           AND abs(length(s.word) - length(t.w)) <= 2
           -- levenshtein takes at most 255 characters; no order of evaluation is promised.
           AND CASE WHEN length(s.word) <= 255 THEN levenshtein_less_equal(s.word, t.w, 2) ELSE 3 END
               <= CASE WHEN length(t.w) = 5 THEN 1 ELSE 2 END
           AND similarity(s.word, t.w) >= 0.25
         ORDER BY levenshtein_less_equal(left(s.word, 255), t.w, 3), similarity(s.word, t.w) DESC,
                  s.word LIMIT 1),
        t.w), ' ' ORDER BY t.n), '')
    FROM regexp_split_to_table(lower($2), '[^[:alnum:]]+') WITH ORDINALITY AS t(w, n),
         (SELECT text_search_config AS c FROM tenants WHERE id = $1) AS cfg
    WHERE t.w <> ''";

/// customer message, draft, final text, outcome, reason
type SampleRow = (String, String, Option<String>, String, Option<String>);

/// sku, name, description, price, currency, stock, coverage, title score
type ProductRow = (
    String,
    String,
    String,
    String,
    String,
    i32,
    sqlx::types::Json<BTreeMap<String, serde_json::Value>>,
    f64,
    f64,
);

impl Store {
    /// Operators' verdicts on earlier drafts for messages like `question`: the closest
    /// first, the newest first among equals.
    pub async fn similar_examples(
        &self,
        tenant_id: Uuid,
        question: &str,
        limit: i64,
    ) -> Result<Vec<Example>> {
        let rows: Vec<SampleRow> = sqlx::query_as(&format!(
            "{SEARCH}
                 SELECT s.customer_message, s.draft, s.final_text, s.outcome, s.reason
                 FROM training_samples s, q
                 WHERE s.tenant_id = $1 AND q.any_term IS NOT NULL AND s.tsv @@ q.any_term::tsquery
                 ORDER BY ts_rank_cd(s.tsv, q.any_term::tsquery) DESC, s.created_at DESC LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(question)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(customer, draft, final_text, outcome, reason)| {
                let rejected = (outcome == "rejected")
                    .then(|| reason.unwrap_or_else(|| "no reason given".into()));
                Example {
                    customer,
                    reply: final_text.unwrap_or(draft),
                    rejected,
                }
            })
            .collect())
    }

    /// Full-text search over the tenant's knowledge base and catalogue, best first, for the
    /// question with its typos corrected towards the shop's own words.
    pub async fn search_knowledge(
        &self,
        tenant_id: Uuid,
        question: &str,
        limit: i64,
    ) -> Result<Vec<Source>> {
        let corrected: String = sqlx::query_scalar(CORRECTED)
            .bind(tenant_id)
            .bind(question)
            .fetch_one(&self.pool)
            .await?;
        self.search_as_written(tenant_id, &corrected, limit).await
    }

    /// The same search for the question exactly as written, typos and all: the retrieval
    /// benchmark's baseline.
    pub async fn search_as_written(
        &self,
        tenant_id: Uuid,
        question: &str,
        limit: i64,
    ) -> Result<Vec<Source>> {
        let docs: Vec<(Uuid, String, String, f64, f64)> = sqlx::query_as(&format!(
            "{SEARCH}{WEIGHTED}
             SELECT * FROM (SELECT d.id, d.title, d.body,
                    COALESCE((SELECT count(*) FROM terms
                              WHERE d.tsv @@ quote_literal(terms.term)::tsquery)::float8
                             / NULLIF(n.total, 0), 0) AS coverage,
                    -- Ordered by the weighted share of the terms it contains, plus the same share
                    -- among the title's (and keywords') words, ts_rank_cd (normalized below 1)
                    -- breaking ties.
                    (COALESCE((SELECT sum(w) FROM weights
                               WHERE d.tsv @@ quote_literal(weights.term)::tsquery)
                              / NULLIF(total.w, 0), 0)
                     + COALESCE((SELECT sum(w) FROM weights
                               WHERE ts_filter(d.tsv, '{{a}}') @@ quote_literal(weights.term)::tsquery)
                              / NULLIF(total.w, 0), 0)
                     + 0.01 * ts_rank_cd(d.tsv, q.any_term::tsquery, 32))::float8 AS score
             FROM knowledge_docs d, q, n, total
             WHERE d.tenant_id = $1 AND q.any_term IS NOT NULL AND d.tsv @@ q.any_term::tsquery) s
             ORDER BY score DESC, coverage DESC, title LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(question)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let products: Vec<ProductRow> =
            sqlx::query_as(&format!(
                "{SEARCH}{WEIGHTED}
                 SELECT * FROM (SELECT p.sku, p.name, p.description, p.price::text, p.currency, p.stock,
                        p.attributes,
                        COALESCE((SELECT count(*) FROM terms
                                  WHERE p.tsv @@ quote_literal(terms.term)::tsquery)::float8
                                 / NULLIF(n.total, 0), 0) AS coverage,
                        -- Ordered by the weighted share of the terms it contains, plus the same share
                        -- among the title's (and keywords') words, ts_rank_cd (normalized below 1)
                        -- breaking ties.
                        (COALESCE((SELECT sum(w) FROM weights
                                   WHERE p.tsv @@ quote_literal(weights.term)::tsquery)
                                  / NULLIF(total.w, 0), 0)
                         + COALESCE((SELECT sum(w) FROM weights
                                   WHERE ts_filter(p.tsv, '{{a}}') @@ quote_literal(weights.term)::tsquery)
                                  / NULLIF(total.w, 0), 0)
                         + 0.01 * ts_rank_cd(p.tsv, q.any_term::tsquery, 32))::float8 AS score
                 FROM products p, q, n, total
                 WHERE p.tenant_id = $1 AND q.any_term IS NOT NULL AND p.tsv @@ q.any_term::tsquery) s
                 ORDER BY score DESC, coverage DESC, name LIMIT $3"
            ))
            .bind(tenant_id)
            .bind(question)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut all: Vec<Source> = docs
            .into_iter()
            .map(|(id, title, body, coverage, rank)| Source {
                reference: format!("doc:{id}"),
                title,
                body,
                coverage,
                rank,
                product: None,
            })
            .chain(products.into_iter().map(
                |(sku, name, description, price, currency, stock, attributes, coverage, rank)| {
                    let attributes: BTreeMap<String, String> = attributes
                        .0
                        .into_iter()
                        .map(|(k, v)| match v {
                            serde_json::Value::String(s) => (k, s),
                            other => (k, other.to_string()),
                        })
                        .collect();
                    Source {
                        reference: format!("product:{sku}"),
                        title: name,
                        body: with_attributes(&description, &attributes),
                        coverage,
                        rank,
                        product: Some(Product {
                            price,
                            currency,
                            stock,
                            attributes,
                        }),
                    }
                },
            ))
            .collect();
        // Ties (two sources matching equally rare words) go the same way on every run.
        all.sort_by(|a, b| {
            b.rank
                .total_cmp(&a.rank)
                .then(b.coverage.total_cmp(&a.coverage))
                .then_with(|| a.title.cmp(&b.title))
        });
        all.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(all)
    }
}

/// Attribute columns a customer may be told of. A catalogue may carry others (a cost
/// price, a supplier, a note), which stay out of what a provider reads.
const PUBLIC_ATTRIBUTES: &[&str] = &[
    "colour",
    "color",
    "farbe",
    "couleur",
    "colore",
    "size",
    "größe",
    "groesse",
    "taille",
    "material",
    "dimensions",
    "weight",
    "capacity",
    "volume",
    "brand",
    "fit",
    "style",
    "pattern",
    "model",
];

/// A product's description followed by its public attributes ("Colour: white."), so that
/// a provider reads, and may cite, what the catalogue says of it.
fn with_attributes(description: &str, attributes: &BTreeMap<String, String>) -> String {
    let mut body = description.trim().to_owned();
    for (k, v) in attributes
        .iter()
        .filter(|(k, _)| PUBLIC_ATTRIBUTES.contains(&k.to_lowercase().as_str()))
    {
        let mut key = k.replace('_', " ");
        if let Some(first) = key.get(..1) {
            key = first.to_uppercase() + &key[1..];
        }
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str(&format!("{key}: {v}."));
    }
    body
}
