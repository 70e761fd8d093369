use switchboard_core::knowledge::{Example, Product, Source};
use uuid::Uuid;

use crate::{Result, Store};

/// Terms of the question; matches of a document; ranked by coverage, then by ts_rank_cd.
const SEARCH: &str = "
    WITH q AS (
        SELECT t.text_search_config AS cfg,
               NULLIF(replace(plainto_tsquery(t.text_search_config, $2)::text, '&', '|'), '') AS any_term
        FROM tenants t WHERE t.id = $1),
    terms AS (SELECT DISTINCT unnest(tsvector_to_array(to_tsvector(q.cfg, $2))) AS term FROM q),
    n AS (SELECT count(*)::float8 AS total FROM terms)";

/// customer message, draft, final text, outcome, reason
type SampleRow = (String, String, Option<String>, String, Option<String>);

/// sku, name, description, price, currency, stock, coverage, rank
type ProductRow = (String, String, String, String, String, i32, f64, f32);

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

    /// Full-text search over the tenant's knowledge base and catalogue, best first.
    pub async fn search_knowledge(
        &self,
        tenant_id: Uuid,
        question: &str,
        limit: i64,
    ) -> Result<Vec<Source>> {
        let docs: Vec<(Uuid, String, String, f64, f32)> = sqlx::query_as(&format!(
            "{SEARCH}
             SELECT d.id, d.title, d.body,
                    (SELECT count(*) FROM terms WHERE d.tsv @@ quote_literal(terms.term)::tsquery)::float8
                        / NULLIF(n.total, 0),
                    ts_rank_cd(d.tsv, q.any_term::tsquery)
             FROM knowledge_docs d, q, n
             WHERE d.tenant_id = $1 AND q.any_term IS NOT NULL AND d.tsv @@ q.any_term::tsquery
             ORDER BY 4 DESC, 5 DESC LIMIT $3"
        ))
        .bind(tenant_id)
        .bind(question)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let products: Vec<ProductRow> =
            sqlx::query_as(&format!(
                "{SEARCH}
                 SELECT p.sku, p.name, p.description, p.price::text, p.currency, p.stock,
                        (SELECT count(*) FROM terms WHERE p.tsv @@ quote_literal(terms.term)::tsquery)::float8
                            / NULLIF(n.total, 0),
                        ts_rank_cd(p.tsv, q.any_term::tsquery)
                 FROM products p, q, n
                 WHERE p.tenant_id = $1 AND q.any_term IS NOT NULL AND p.tsv @@ q.any_term::tsquery
                 ORDER BY 7 DESC, 8 DESC LIMIT $3"
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
                rank: f64::from(rank),
                product: None,
            })
            .chain(products.into_iter().map(
                |(sku, name, description, price, currency, stock, coverage, rank)| Source {
                    reference: format!("product:{sku}"),
                    title: name,
                    body: description,
                    coverage,
                    rank: f64::from(rank),
                    product: Some(Product {
                        price,
                        currency,
                        stock,
                    }),
                },
            ))
            .collect();
        all.sort_by(|a, b| {
            b.coverage
                .total_cmp(&a.coverage)
                .then(b.rank.total_cmp(&a.rank))
        });
        all.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(all)
    }
}
