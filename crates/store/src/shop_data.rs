//! A shop's knowledge base and catalogue as its admins manage them: documents replaced per
//! source file, products upserted by SKU. Every change is audited; searching is in
//! `knowledge.rs`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// A knowledge document as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct DocSummary {
    pub id: Uuid,
    pub title: String,
    /// The file it was imported from; none for documents written otherwise.
    pub source: Option<String>,
    pub chars: i32,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Doc {
    pub id: Uuid,
    pub title: String,
    pub source: Option<String>,
    pub keywords: String,
    pub body: String,
    pub updated_at: DateTime<Utc>,
}

/// A product as written: price as decimal text (`14.90`), currency absent for the shop's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductInput {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: String,
    pub currency: Option<String>,
    pub stock: i32,
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProductRecord {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price: String,
    pub currency: String,
    pub stock: i32,
    pub attributes: sqlx::types::Json<BTreeMap<String, String>>,
    pub updated_at: DateTime<Utc>,
}

/// What a catalogue import did, by SKU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub unchanged: usize,
    pub removed: Vec<String>,
}

/// How a product write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Added,
    Changed,
    Unchanged,
}

const PRODUCT: &str = "SELECT sku, name, description, price::text AS price, currency, stock,
                              attributes, updated_at FROM products";

impl Store {
    /// Replaces the documents imported from `source` with `sections` (title, body), in the
    /// tenant's search language. Returns how many were removed and added.
    pub async fn replace_documents(
        &self,
        tenant_id: Uuid,
        source: &str,
        sections: &[(String, String)],
        actor: &str,
    ) -> Result<(u64, usize)> {
        let mut tx = self.pool.begin().await?;
        let removed =
            sqlx::query("DELETE FROM knowledge_docs WHERE tenant_id = $1 AND source = $2")
                .bind(tenant_id)
                .bind(source)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        for (title, body) in sections {
            sqlx::query(
                "INSERT INTO knowledge_docs (id, tenant_id, title, body, source, search_config)
                 SELECT $1, $2, $3, $4, $5, text_search_config FROM tenants WHERE id = $2",
            )
            .bind(Uuid::now_v7())
            .bind(tenant_id)
            .bind(title)
            .bind(body)
            .bind(source)
            .execute(&mut *tx)
            .await?;
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "kb.import",
            ("knowledge_source", None),
            json!({"source": source, "removed": removed, "added": sections.len()}),
        )
        .await?;
        tx.commit().await?;
        Ok((removed, sections.len()))
    }

    pub async fn documents(&self, tenant_id: Uuid) -> Result<Vec<DocSummary>> {
        Ok(sqlx::query_as(
            "SELECT id, title, source, length(body) AS chars, updated_at FROM knowledge_docs
             WHERE tenant_id = $1 ORDER BY source NULLS FIRST, created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn document(&self, tenant_id: Uuid, id: Uuid) -> Result<Doc> {
        sqlx::query_as(
            "SELECT id, title, source, keywords, body, updated_at FROM knowledge_docs
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .ok_or(StoreError::NotFound { what: "document" })
    }

    /// A document written by hand (the console or the API), with no source file: a
    /// re-import never replaces it.
    pub async fn add_document(
        &self,
        tenant_id: Uuid,
        (title, keywords, body): (&str, &str, &str),
        actor: &str,
    ) -> Result<Doc> {
        check_document(title, body)?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO knowledge_docs (id, tenant_id, title, keywords, body, search_config)
             SELECT $1, $2, $3, $4, $5, text_search_config FROM tenants WHERE id = $2",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(title.trim())
        .bind(keywords)
        .bind(body)
        .execute(&mut *tx)
        .await?;
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "kb.add",
            ("knowledge_doc", Some(id)),
            json!({"title": title.trim()}),
        )
        .await?;
        tx.commit().await?;
        self.document(tenant_id, id).await
    }

    /// An admin's edit of one document; the document keeps its source, so importing the
    /// file again replaces the edit.
    pub async fn update_document(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        (title, keywords, body): (&str, &str, &str),
        actor: &str,
    ) -> Result<Doc> {
        check_document(title, body)?;
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE knowledge_docs SET title = $3, keywords = $4, body = $5, updated_at = now()
             WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant_id)
        .bind(id)
        .bind(title.trim())
        .bind(keywords)
        .bind(body)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "document" });
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "kb.edit",
            ("knowledge_doc", Some(id)),
            json!({"title": title.trim()}),
        )
        .await?;
        tx.commit().await?;
        self.document(tenant_id, id).await
    }

    /// Removes one document by id, or every document imported from a source file.
    pub async fn remove_documents(
        &self,
        tenant_id: Uuid,
        which: DocsToRemove<'_>,
        actor: &str,
    ) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let (sql, details) = match which {
            DocsToRemove::Id(id) => (
                sqlx::query("DELETE FROM knowledge_docs WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant_id)
                    .bind(id),
                json!({"id": id}),
            ),
            DocsToRemove::Source(source) => (
                sqlx::query("DELETE FROM knowledge_docs WHERE tenant_id = $1 AND source = $2")
                    .bind(tenant_id)
                    .bind(source),
                json!({"source": source}),
            ),
        };
        let n = sql.execute(&mut *tx).await?.rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "document" });
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "kb.remove",
            ("knowledge_doc", None),
            json!({"which": details, "removed": n}),
        )
        .await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Upserts the catalogue by SKU; with `remove_missing`, products the file does not list
    /// are removed (the file is the whole catalogue). One transaction, one audit event.
    pub async fn import_products(
        &self,
        tenant_id: Uuid,
        rows: &[ProductInput],
        remove_missing: bool,
        actor: &str,
    ) -> Result<ImportReport> {
        let mut tx = self.pool.begin().await?;
        let mut report = ImportReport::default();
        for p in rows {
            match upsert_product(&mut tx, tenant_id, p).await? {
                Upserted::Added => report.added.push(p.sku.clone()),
                Upserted::Changed => report.changed.push(p.sku.clone()),
                Upserted::Unchanged => report.unchanged += 1,
            }
        }
        if remove_missing {
            let listed: Vec<&str> = rows.iter().map(|p| p.sku.as_str()).collect();
            report.removed = sqlx::query_scalar(
                "DELETE FROM products WHERE tenant_id = $1 AND NOT (sku = ANY($2)) RETURNING sku",
            )
            .bind(tenant_id)
            .bind(&listed)
            .fetch_all(&mut *tx)
            .await?;
            report.removed.sort();
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "catalog.import",
            ("catalog", None),
            json!({"added": report.added, "changed": report.changed,
                   "unchanged": report.unchanged, "removed": report.removed}),
        )
        .await?;
        tx.commit().await?;
        Ok(report)
    }

    /// Writes one product (a shop system's `PUT /products/{sku}`), audited.
    pub async fn put_product(
        &self,
        tenant_id: Uuid,
        p: &ProductInput,
        actor: &str,
    ) -> Result<Upserted> {
        let mut tx = self.pool.begin().await?;
        let done = upsert_product(&mut tx, tenant_id, p).await?;
        if done != Upserted::Unchanged {
            crate::users::audit_admin(
                &mut *tx,
                tenant_id,
                actor,
                "product.put",
                ("product", None),
                json!({"sku": p.sku, "added": done == Upserted::Added}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(done)
    }

    /// Sets a product's stock alone (audited when it changes); NotFound for an unknown SKU.
    pub async fn set_stock(
        &self,
        tenant_id: Uuid,
        sku: &str,
        stock: i32,
        actor: &str,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let before: Option<i32> = sqlx::query_scalar(
            "SELECT stock FROM products WHERE tenant_id = $1 AND sku = $2 FOR UPDATE",
        )
        .bind(tenant_id)
        .bind(sku)
        .fetch_optional(&mut *tx)
        .await?;
        let before = before.ok_or(StoreError::NotFound { what: "product" })?;
        if before == stock {
            return Ok(());
        }
        sqlx::query(
            "UPDATE products SET stock = $3, updated_at = now() WHERE tenant_id = $1 AND sku = $2",
        )
        .bind(tenant_id)
        .bind(sku)
        .bind(stock)
        .execute(&mut *tx)
        .await?;
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "product.stock",
            ("product", None),
            json!({"sku": sku, "from": before, "to": stock}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn product(&self, tenant_id: Uuid, sku: &str) -> Result<ProductRecord> {
        sqlx::query_as(&format!("{PRODUCT} WHERE tenant_id = $1 AND sku = $2"))
            .bind(tenant_id)
            .bind(sku)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "product" })
    }

    pub async fn products(&self, tenant_id: Uuid) -> Result<Vec<ProductRecord>> {
        Ok(
            sqlx::query_as(&format!("{PRODUCT} WHERE tenant_id = $1 ORDER BY sku"))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn remove_product(&self, tenant_id: Uuid, sku: &str, actor: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM products WHERE tenant_id = $1 AND sku = $2")
            .bind(tenant_id)
            .bind(sku)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound { what: "product" });
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "product.remove",
            ("product", None),
            json!({"sku": sku}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Which documents `remove_documents` removes.
#[derive(Debug, Clone, Copy)]
pub enum DocsToRemove<'a> {
    Id(Uuid),
    Source(&'a str),
}

/// Inserts or updates one product; the shop's currency where the row names none.
async fn upsert_product(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    tenant_id: Uuid,
    p: &ProductInput,
) -> Result<Upserted> {
    let row: Option<(bool,)> = sqlx::query_as(
        "WITH t AS (SELECT currency, text_search_config FROM tenants WHERE id = $2)
         INSERT INTO products (id, tenant_id, sku, name, description, price, currency, stock,
                               attributes, search_config)
         SELECT $1, $2, $3, $4, $5, $6::numeric, COALESCE($7, t.currency), $8, $9, t.text_search_config
         FROM t
         ON CONFLICT (tenant_id, sku) DO UPDATE SET
             name = EXCLUDED.name, description = EXCLUDED.description, price = EXCLUDED.price,
             currency = EXCLUDED.currency, stock = EXCLUDED.stock, attributes = EXCLUDED.attributes,
             updated_at = now()
         WHERE (products.name, products.description, products.price, products.currency,
                products.stock, products.attributes)
               IS DISTINCT FROM
               (EXCLUDED.name, EXCLUDED.description, EXCLUDED.price, EXCLUDED.currency,
                EXCLUDED.stock, EXCLUDED.attributes)
         RETURNING (xmax = 0)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(&p.sku)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.price)
    .bind(&p.currency)
    .bind(p.stock)
    .bind(sqlx::types::Json(&p.attributes))
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match row {
        Some((true,)) => Upserted::Added,
        Some((false,)) => Upserted::Changed,
        None => Upserted::Unchanged,
    })
}

/// A document written by hand needs a title and a body.
fn check_document(title: &str, body: &str) -> Result<()> {
    if title.trim().is_empty() || body.trim().is_empty() {
        return Err(StoreError::Invalid(
            "a document needs a title and a body".into(),
        ));
    }
    Ok(())
}
