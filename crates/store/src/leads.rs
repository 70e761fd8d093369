//! Leads on the customer record: captured after a draft, corrected by operators, exported
//! by admins. **Nothing is captured for a customer who said STOP**, and no capture
//! overwrites a field an operator corrected.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use switchboard_core::{LEAD_FIELDS, Lead};
use uuid::Uuid;

use crate::users::audit;
use crate::{Result, Store, StoreError, User};

/// One customer's lead, as an export lists it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LeadRow {
    pub customer_id: Uuid,
    pub channel: String,
    /// The customer's newest conversation, to open it in the console.
    pub conversation_id: Option<Uuid>,
    #[sqlx(json)]
    pub lead: Lead,
    pub updated_at: Option<DateTime<Utc>>,
}

impl Store {
    /// Adds what a draft found to the conversation's customer: fields an operator corrected
    /// stay, and a customer whose consent is revoked gets nothing. Returns whether the
    /// lead changed. Runs on its own, after the draft's commit: the customer row comes
    /// before its conversation in the lock order, so it is not written under the draft's
    /// conversation lock.
    pub async fn capture_lead(
        &self,
        tenant_id: Uuid,
        conversation_id: Uuid,
        lead: &Lead,
    ) -> Result<bool> {
        let mut lead = lead.clone();
        // The shop's own address or number, quoted by the customer ("I wrote to
        // support@…"), is not theirs.
        if let Some(email) = lead.email.clone()
            && self.shop_publishes(tenant_id, &email).await?
        {
            lead.email = None;
        }
        if let Some(phone) = lead.phone.clone()
            && self.shop_publishes(tenant_id, &phone).await?
        {
            lead.phone = None;
        }
        if lead.is_empty() {
            return Ok(false);
        }
        let found = serde_json::to_value(&lead).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        // The merge is computed in SET, on the row as it is when the update holds its
        // lock, so a correction or another capture committed meanwhile is built on, not
        // undone.
        let n = sqlx::query(
            "UPDATE customers cu SET
                 lead = cu.lead || COALESCE(
                     (SELECT jsonb_object_agg(key, value) FROM jsonb_each($3::jsonb)
                      WHERE NOT key = ANY (cu.lead_corrected)), '{}'),
                 lead_updated_at = now()
             FROM conversations c
             WHERE c.id = $2 AND c.tenant_id = $1 AND cu.id = c.customer_id
               AND EXISTS (SELECT 1 FROM jsonb_each($3::jsonb) f
                           WHERE NOT f.key = ANY (cu.lead_corrected)
                             AND cu.lead -> f.key IS DISTINCT FROM f.value)
               AND NOT EXISTS (SELECT 1 FROM consents k
                               WHERE k.customer_id = cu.id AND k.status = 'revoked')",
        )
        .bind(tenant_id)
        .bind(conversation_id)
        .bind(found)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Whether the shop itself gives out `contact`: in its knowledge base, its escalation
    /// contacts or a channel's settings (a mailbox's own address). A phone number is
    /// compared by its last eight digits, so "+49 (0)30 1234-5678" is "030 12345678".
    async fn shop_publishes(&self, tenant_id: Uuid, contact: &str) -> Result<bool> {
        let digits: String = contact.chars().filter(char::is_ascii_digit).collect();
        let (needle, as_digits) = if contact.contains('@') {
            (contact.to_lowercase(), false)
        } else {
            let tail = digits.len().saturating_sub(8);
            (digits[tail..].to_owned(), true)
        };
        if needle.len() < 7 {
            return Ok(false);
        }
        Ok(sqlx::query_scalar(
            "WITH published AS (
                 SELECT body AS t FROM knowledge_docs WHERE tenant_id = $1
                 UNION ALL SELECT escalation_contacts::text FROM tenants WHERE id = $1
                 UNION ALL SELECT config::text FROM channels WHERE tenant_id = $1)
             SELECT EXISTS (SELECT 1 FROM published WHERE strpos(
                 CASE WHEN $3 THEN regexp_replace(t, '[^0-9]', '', 'g') ELSE lower(t) END,
                 $2) > 0)",
        )
        .bind(tenant_id)
        .bind(&needle)
        .bind(as_digits)
        .fetch_one(&self.pool)
        .await?)
    }

    /// An operator's correction of the conversation's customer's lead: each given field is
    /// set (a string) or cleared (`null`), and marked as corrected so no capture changes it
    /// again. Audited with the field names, not their values.
    pub async fn correct_lead(
        &self,
        user: &User,
        conversation_id: Uuid,
        changes: &Map<String, Value>,
    ) -> Result<Lead> {
        let mut set = Map::new();
        let mut clear = Vec::new();
        for (k, v) in changes {
            if !LEAD_FIELDS.contains(&k.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "unknown lead field {k:?} (expected one of {})",
                    LEAD_FIELDS.join(", ")
                )));
            }
            match v {
                Value::Null => clear.push(k.clone()),
                Value::String(s) if s.trim().is_empty() => clear.push(k.clone()),
                Value::String(s) => {
                    set.insert(k.clone(), Value::String(s.clone()));
                }
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "lead field {k:?} must be a string or null"
                    )));
                }
            }
        }
        if set.is_empty() && clear.is_empty() {
            return Err(StoreError::Invalid("no lead field to change".into()));
        }
        // Cleaned like a capture (trimmed, one line's length).
        let cleaned: Lead = serde_json::from_value::<Lead>(Value::Object(set))
            .map_err(|e| StoreError::Invalid(e.to_string()))?
            .cleaned();
        let fields: Vec<&String> = changes.keys().collect();
        let mut tx = self.pool.begin().await?;
        let lead: Option<sqlx::types::Json<Lead>> = sqlx::query_scalar(
            "UPDATE customers cu
             SET lead = (cu.lead - $4::text[]) || $3::jsonb,
                 lead_corrected = ARRAY(SELECT DISTINCT unnest(cu.lead_corrected || $5::text[])),
                 lead_updated_at = now()
             FROM conversations c
             WHERE c.id = $2 AND c.tenant_id = $1 AND cu.id = c.customer_id
             RETURNING cu.lead",
        )
        .bind(user.tenant_id)
        .bind(conversation_id)
        .bind(serde_json::to_value(&cleaned).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(&clear)
        .bind(&fields)
        .fetch_optional(&mut *tx)
        .await?;
        let lead = lead.ok_or(StoreError::NotFound {
            what: "conversation",
        })?;
        audit(
            &mut *tx,
            user,
            "lead.correct",
            "conversation",
            Some(conversation_id),
            json!({"fields": fields}),
        )
        .await?;
        tx.commit().await?;
        Ok(lead.0)
    }

    /// The tenant's leads, newest first; a customer who said STOP is left out.
    pub async fn leads(&self, tenant_id: Uuid) -> Result<Vec<LeadRow>> {
        Ok(sqlx::query_as(
            "SELECT cu.id AS customer_id, ch.kind AS channel,
                    (SELECT c.id FROM conversations c WHERE c.customer_id = cu.id
                     ORDER BY c.updated_at DESC LIMIT 1) AS conversation_id,
                    cu.lead, cu.lead_updated_at AS updated_at
             FROM customers cu JOIN channels ch ON ch.id = cu.channel_id
             WHERE cu.tenant_id = $1 AND cu.lead <> '{}'
               AND NOT EXISTS (SELECT 1 FROM consents k
                               WHERE k.customer_id = cu.id AND k.status = 'revoked')
             ORDER BY cu.lead_updated_at DESC NULLS LAST, cu.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The tenant's leads as CSV, a header row first.
    pub async fn leads_csv(&self, tenant_id: Uuid) -> Result<String> {
        let rows = self.leads(tenant_id).await?;
        let mut out = csv::Writer::from_writer(Vec::new());
        let csv_err = |e: csv::Error| StoreError::Corrupt(e.to_string());
        let mut header = vec!["customer_id", "channel", "conversation_id"];
        header.extend(LEAD_FIELDS);
        header.push("updated_at");
        out.write_record(&header).map_err(csv_err)?;
        for r in rows {
            let mut record = vec![
                r.customer_id.to_string(),
                r.channel,
                r.conversation_id.map(|c| c.to_string()).unwrap_or_default(),
            ];
            record.extend(
                r.lead
                    .fields()
                    .iter()
                    .map(|(field, v)| spreadsheet_safe(field, v.unwrap_or(""))),
            );
            record.push(r.updated_at.map(|t| t.to_rfc3339()).unwrap_or_default());
            out.write_record(&record).map_err(csv_err)?;
        }
        let bytes = out
            .into_inner()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        String::from_utf8(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// A customer wrote these values, and a spreadsheet runs a cell that starts with `=`, `+`,
/// `-`, `@`, a tab or a carriage return as a formula: such a value gets a leading
/// apostrophe. Only a phone number made of nothing but digits, spaces and `+()./-` (such
/// as `+49 30 1234`) stays as it is.
fn spreadsheet_safe(field: &str, v: &str) -> String {
    let phone = field == "phone"
        && v.chars()
            .all(|c| c.is_ascii_digit() || " +()./-".contains(c));
    let risky = v.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if risky && !phone {
        format!("'{v}")
    } else {
        v.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn formulas_are_defused_and_phone_numbers_kept() {
        let name = |v| spreadsheet_safe("name", v);
        assert_eq!(name("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(name("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(name("-cmd"), "'-cmd");
        assert_eq!(name("-1+cmd|' /C calc'!A0"), "'-1+cmd|' /C calc'!A0");
        assert_eq!(name("+1+HYPERLINK(1)"), "'+1+HYPERLINK(1)");
        assert_eq!(name("Anna"), "Anna");
        assert_eq!(name(""), "");
        let phone = |v| spreadsheet_safe("phone", v);
        assert_eq!(phone("+49 30 1234"), "+49 30 1234");
        assert_eq!(phone("+1+HYPERLINK(1)"), "'+1+HYPERLINK(1)");
    }
}
