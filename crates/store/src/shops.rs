//! Tenants as the platform admin manages them: created with a web-chat channel and the
//! seed defaults of every setting (nothing of the demo shop), listed, shown, disabled and
//! enabled again. Every change is audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// A tenant to create, as the admin gives it; [`NewTenant::parse`] checks every field.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
    /// A BCP 47 tag (`de`, `pt-BR`); the shop speaks its primary language.
    pub language: String,
    /// An IANA time zone (`Europe/Berlin`).
    pub timezone: String,
    /// An ISO 4217 code (`EUR`).
    pub currency: String,
}

/// A tenant as listed and shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct TenantRecord {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub language: String,
    pub timezone: String,
    pub currency: String,
    /// `active` or `disabled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub channels: i64,
    pub users: i64,
}

/// PostgreSQL's text-search configuration for a language, `simple` (no stemming) for the
/// languages it has none for.
pub fn search_config(language: &str) -> &'static str {
    match language {
        "ar" => "arabic",
        "hy" => "armenian",
        "eu" => "basque",
        "ca" => "catalan",
        "da" => "danish",
        "nl" => "dutch",
        "en" => "english",
        "fi" => "finnish",
        "fr" => "french",
        "de" => "german",
        "el" => "greek",
        "hi" => "hindi",
        "hu" => "hungarian",
        "id" => "indonesian",
        "ga" => "irish",
        "it" => "italian",
        "lt" => "lithuanian",
        "ne" => "nepali",
        "no" | "nb" | "nn" => "norwegian",
        "pt" => "portuguese",
        "ro" => "romanian",
        "ru" => "russian",
        "sr" => "serbian",
        "es" => "spanish",
        "sv" => "swedish",
        "ta" => "tamil",
        "tr" => "turkish",
        "yi" => "yiddish",
        _ => "simple",
    }
}

/// The primary language of a BCP 47 tag, lower case: `pt-BR` is `pt`.
pub fn primary_language(tag: &str) -> Result<String> {
    let mut parts = tag.trim().split(['-', '_']);
    let primary = parts.next().unwrap_or_default().to_ascii_lowercase();
    let well_formed = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    if well_formed {
        Ok(primary)
    } else {
        Err(StoreError::Invalid(format!(
            "language {tag:?} is not a BCP 47 tag such as en, de or pt-BR"
        )))
    }
}

pub fn check_timezone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        StoreError::Invalid(format!(
            "timezone {tz:?} is not an IANA time zone such as Europe/Berlin"
        ))
    })
}

pub fn currency(code: &str) -> Result<String> {
    let c = code.trim().to_ascii_uppercase();
    if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(c)
    } else {
        Err(StoreError::Invalid(format!(
            "currency {code:?} is not an ISO 4217 code such as EUR"
        )))
    }
}

fn check_slug(slug: &str) -> Result<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 63
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "slug {slug:?} must be 1-63 lower-case letters, digits and dashes, not starting with a dash"
        )))
    }
}

const SELECT: &str = "SELECT t.id, t.slug, t.name, t.language, t.timezone, t.currency,
        CASE WHEN t.status = 'active' THEN 'active' ELSE 'disabled' END AS status, t.created_at,
        (SELECT count(*) FROM channels c WHERE c.tenant_id = t.id) AS channels,
        (SELECT count(*) FROM users u WHERE u.tenant_id = t.id AND u.removed_at IS NULL) AS users
     FROM tenants t";

impl Store {
    /// Creates the tenant with a web-chat channel and the defaults of every setting.
    pub async fn add_tenant(&self, t: &NewTenant, actor: &str) -> Result<TenantRecord> {
        check_slug(&t.slug)?;
        let name = t.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(StoreError::Invalid("name must be 1-200 characters".into()));
        }
        let language = primary_language(&t.language)?;
        check_timezone(&t.timezone)?;
        let currency = currency(&t.currency)?;
        let id = Uuid::now_v7();
        let mut tx = self.pool.begin().await?;
        let created = sqlx::query(
            "INSERT INTO tenants (id, slug, name, language, text_search_config, timezone, currency)
             VALUES ($1, $2, $3, $4, $5::regconfig, $6, $7) ON CONFLICT (slug) DO NOTHING",
        )
        .bind(id)
        .bind(&t.slug)
        .bind(name)
        .bind(&language)
        .bind(search_config(&language))
        .bind(&t.timezone)
        .bind(&currency)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if created == 0 {
            return Err(StoreError::Conflict(format!(
                "a tenant with the slug {:?} exists",
                t.slug
            )));
        }
        sqlx::query(
            "INSERT INTO channels (id, tenant_id, kind, name) VALUES ($1, $2, 'webchat', 'Website chat')",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO decision_settings (tenant_id) VALUES ($1)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        crate::users::audit_admin(
            &mut *tx,
            id,
            actor,
            "tenant.create",
            ("tenant", Some(id)),
            json!({"slug": t.slug, "name": name, "language": language,
                   "timezone": t.timezone, "currency": currency}),
        )
        .await?;
        tx.commit().await?;
        self.tenant(&t.slug).await
    }

    pub async fn tenants(&self) -> Result<Vec<TenantRecord>> {
        Ok(sqlx::query_as(&format!("{SELECT} ORDER BY t.created_at"))
            .fetch_all(&self.pool)
            .await?)
    }

    pub async fn tenant(&self, slug: &str) -> Result<TenantRecord> {
        sqlx::query_as(&format!("{SELECT} WHERE t.slug = $1"))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound { what: "tenant" })
    }

    /// A disabled tenant's channels answer 404 and its messages are not drafted; enabled
    /// again, it answers new messages (what arrived while it was disabled stays stored and
    /// unanswered, for its operators). Idempotent.
    pub async fn set_tenant_enabled(
        &self,
        slug: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<TenantRecord> {
        let mut tx = self.pool.begin().await?;
        let id: Uuid =
            sqlx::query_scalar("UPDATE tenants SET status = $2 WHERE slug = $1 RETURNING id")
                .bind(slug)
                .bind(if enabled { "active" } else { "suspended" })
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound { what: "tenant" })?;
        crate::users::audit_admin(
            &mut *tx,
            id,
            actor,
            if enabled {
                "tenant.enable"
            } else {
                "tenant.disable"
            },
            ("tenant", Some(id)),
            json!({"slug": slug}),
        )
        .await?;
        tx.commit().await?;
        self.tenant(slug).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn fields_are_checked() {
        assert_eq!(primary_language("pt-BR").unwrap(), "pt");
        assert_eq!(primary_language("DE").unwrap(), "de");
        assert!(primary_language("english").is_err());
        assert!(primary_language("").is_err());
        assert_eq!(search_config("de"), "german");
        assert_eq!(search_config("pl"), "simple");
        assert!(check_timezone("Europe/Berlin").is_ok());
        assert!(check_timezone("Mars/Olympus").is_err());
        assert_eq!(currency("eur").unwrap(), "EUR");
        assert!(currency("EURO").is_err());
        assert!(check_slug("my-shop-2").is_ok());
        assert!(check_slug("My Shop").is_err());
        assert!(check_slug("-shop").is_err());
    }
}
