//! A tenant's API tokens: what its own systems (a shop keeping stock and prices live) sign
//! requests with, instead of a person's session. A token is shown once, stored only as its
//! SHA-256 digest, and works until revoked.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::users::{random_token, token_hash};
use crate::{Result, Store, StoreError};

/// Every token starts so, so one is told apart from a session token at a glance (and by
/// secret scanners).
pub const PREFIX: &str = "sbk_";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ApiToken {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Store {
    /// A new token for the tenant, and its secret, which is not kept.
    pub async fn add_api_token(
        &self,
        tenant_id: Uuid,
        name: &str,
        actor: &str,
    ) -> Result<(ApiToken, String)> {
        let name = name.trim();
        if !(1..=100).contains(&name.chars().count()) {
            return Err(StoreError::Invalid(
                "a token's name must be 1-100 characters".into(),
            ));
        }
        let secret = format!("{PREFIX}{}", random_token());
        let mut tx = self.pool.begin().await?;
        let token: ApiToken = sqlx::query_as(
            "INSERT INTO api_tokens (id, tenant_id, name, token_hash) VALUES ($1, $2, $3, $4)
             RETURNING id, tenant_id, name, created_at, last_used_at, revoked_at",
        )
        .bind(Uuid::now_v7())
        .bind(tenant_id)
        .bind(name)
        .bind(token_hash(&secret))
        .fetch_one(&mut *tx)
        .await?;
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "api_token.create",
            ("api_token", Some(token.id)),
            json!({"name": name}),
        )
        .await?;
        tx.commit().await?;
        Ok((token, secret))
    }

    pub async fn api_tokens(&self, tenant_id: Uuid) -> Result<Vec<ApiToken>> {
        Ok(sqlx::query_as(
            "SELECT id, tenant_id, name, created_at, last_used_at, revoked_at FROM api_tokens
             WHERE tenant_id = $1 ORDER BY created_at",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn revoke_api_token(&self, tenant_id: Uuid, id: Uuid, actor: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE api_tokens SET revoked_at = now()
             WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL",
        )
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound {
                what: "active API token",
            });
        }
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            actor,
            "api_token.revoke",
            ("api_token", Some(id)),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The live token with this secret, of an active tenant; noted as used.
    pub async fn api_token(&self, secret: &str) -> Result<Option<ApiToken>> {
        if !secret.starts_with(PREFIX) {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "UPDATE api_tokens k SET last_used_at = now() FROM tenants t
             WHERE k.token_hash = $1 AND k.revoked_at IS NULL
               AND t.id = k.tenant_id AND t.status = 'active'
             RETURNING k.id, k.tenant_id, k.name, k.created_at, k.last_used_at, k.revoked_at",
        )
        .bind(token_hash(secret))
        .fetch_optional(&self.pool)
        .await?)
    }
}
