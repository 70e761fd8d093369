//! Managing a shop's operator accounts: list, change a role, disable and enable, remove,
//! reset a password. Every change is audited, and a shop always keeps an owner who can
//! sign in.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::users::{Role, check_password, hash_password};
use crate::{Result, Store, StoreError};

/// An account as its shop's admins see it.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Locked for a while after repeated wrong passwords.
    pub locked: bool,
    pub telegram_linked: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: Uuid,
    email: String,
    role: String,
    disabled: bool,
    locked: bool,
    telegram_linked: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self> {
        Ok(Account {
            id: r.id,
            role: r
                .role
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("role {}", r.role)))?,
            email: r.email,
            disabled: r.disabled,
            locked: r.locked,
            telegram_linked: r.telegram_linked,
            created_at: r.created_at,
        })
    }
}

const SELECT: &str = "SELECT id, email, role, disabled_at IS NOT NULL AS disabled,
        COALESCE(locked_until > now(), false) AS locked,
        telegram_user_id IS NOT NULL AS telegram_linked, created_at
    FROM users WHERE removed_at IS NULL";

/// One change to an account.
#[derive(Debug, Clone)]
pub enum AccountChange {
    Role(Role),
    Disable,
    Enable,
    Remove,
    /// A new password, set by an admin: the lock and the account's sessions end.
    Password(String),
}

impl AccountChange {
    fn action(&self) -> &'static str {
        match self {
            Self::Role(_) => "user.role",
            Self::Disable => "user.disable",
            Self::Enable => "user.enable",
            Self::Remove => "user.remove",
            Self::Password(_) => "user.password_reset",
        }
    }

    /// Whether the account stops being a working owner by it (so the shop must keep
    /// another).
    fn ends_owner(&self) -> bool {
        matches!(self, Self::Disable | Self::Remove)
            || matches!(self, Self::Role(r) if *r != Role::Owner)
    }
}

/// Who asks for a change: an account of the shop (the API and console), whose powers are
/// checked, or the platform admin (the command line), who may do anything.
#[derive(Debug, Clone, Copy)]
pub enum AccountActor<'a> {
    User(&'a crate::User),
    Platform(&'a str),
}

impl AccountActor<'_> {
    fn audit_name(&self) -> String {
        match self {
            Self::User(u) => u.id.to_string(),
            Self::Platform(name) => (*name).to_owned(),
        }
    }
}

impl Store {
    /// The shop's accounts (removed ones left out), by address.
    pub async fn accounts(&self, tenant_id: Uuid) -> Result<Vec<Account>> {
        let rows: Vec<AccountRow> =
            sqlx::query_as(&format!("{SELECT} AND tenant_id = $1 ORDER BY email"))
                .bind(tenant_id)
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(Account::try_from).collect()
    }

    pub async fn account_by_email(&self, tenant_id: Uuid, email: &str) -> Result<Account> {
        let row: Option<AccountRow> =
            sqlx::query_as(&format!("{SELECT} AND tenant_id = $1 AND email = $2"))
                .bind(tenant_id)
                .bind(email.trim().to_lowercase())
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or(StoreError::NotFound { what: "user" })?.try_into()
    }

    /// Changes one account of the shop. Only an owner changes an owner's or an admin's
    /// account or makes someone an admin or owner (an admin manages operators and viewers,
    /// and their own password); nobody disables or removes their own account; the last
    /// owner who can sign in stays one. The acting user's role is the one read under the
    /// lock, so an owner demoted meanwhile acts as what they are now. Disabling, removing and a new password end the
    /// account's sessions; disabling and removing also hand the conversations it held back
    /// to the shop. Audited with what changed (never the password).
    pub async fn change_account(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        change: AccountChange,
        actor: AccountActor<'_>,
    ) -> Result<Account> {
        let hash = match &change {
            AccountChange::Password(p) => {
                let email: String = sqlx::query_scalar(
                    "SELECT email FROM users WHERE id = $1 AND tenant_id = $2 AND removed_at IS NULL",
                )
                .bind(user_id)
                .bind(tenant_id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or(StoreError::NotFound { what: "user" })?;
                check_password(&email, p)?;
                Some(hash_password(p.clone()).await?)
            }
            _ => None,
        };
        let mut tx = self.pool.begin().await?;
        // The shop's working owners and the account changed, locked in one order (by id)
        // so that two changes at once cannot both remove "the other" last owner. NO KEY
        // UPDATE leaves the key-share locks of conversations naming a user unblocked.
        let acting = match actor {
            AccountActor::User(me) => Some(me.id),
            AccountActor::Platform(_) => None,
        };
        let locked: Vec<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT id, role, disabled_at IS NOT NULL FROM users
             WHERE tenant_id = $1 AND removed_at IS NULL
               AND (id = $2 OR id = $3 OR (role = 'owner' AND disabled_at IS NULL))
             ORDER BY id FOR NO KEY UPDATE",
        )
        .bind(tenant_id)
        .bind(user_id)
        .bind(acting)
        .fetch_all(&mut *tx)
        .await?;
        let Some((_, current, disabled)) = locked.iter().find(|(id, ..)| *id == user_id) else {
            return Err(StoreError::NotFound { what: "user" });
        };
        let current: Role = current
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("role {current}")))?;
        if let AccountActor::User(me) = actor {
            if me.tenant_id != tenant_id {
                return Err(StoreError::NotFound { what: "user" });
            }
            // What the actor is now, not what their session said.
            let my_role = match locked.iter().find(|(id, ..)| *id == me.id) {
                Some((_, role, false)) => role.as_str(),
                _ => return Err(StoreError::Forbidden("your account can no longer act")),
            };
            let own_password = me.id == user_id && matches!(change, AccountChange::Password(_));
            let privileged = |r: Role| matches!(r, Role::Owner | Role::Admin);
            let touches_privileged =
                privileged(current) || matches!(change, AccountChange::Role(r) if privileged(r));
            if my_role != Role::Owner.as_str() && (touches_privileged && !own_password) {
                return Err(StoreError::Forbidden(
                    "only an owner can change an owner's or an admin's account, or make someone an admin or owner",
                ));
            }
            if me.id == user_id && matches!(change, AccountChange::Disable | AccountChange::Remove)
            {
                return Err(StoreError::Forbidden(
                    "you cannot disable or remove your own account",
                ));
            }
        }
        let working_owners = locked
            .iter()
            .filter(|(_, role, disabled)| role == "owner" && !disabled)
            .count();
        if current == Role::Owner && !disabled && change.ends_owner() && working_owners <= 1 {
            return Err(StoreError::Conflict(
                "this is the shop's last owner: make another account an owner first".into(),
            ));
        }
        let details = match &change {
            AccountChange::Role(role) => {
                sqlx::query("UPDATE users SET role = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(&mut *tx)
                    .await?;
                json!({"from": current.as_str(), "to": role.as_str()})
            }
            AccountChange::Disable => {
                sqlx::query(
                    "UPDATE users SET disabled_at = COALESCE(disabled_at, now()) WHERE id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                end_sessions_and_hand_back(&mut tx, user_id).await?
            }
            AccountChange::Enable => {
                sqlx::query(
                    "UPDATE users SET disabled_at = NULL, failed_logins = 0, locked_until = NULL
                     WHERE id = $1",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                json!({})
            }
            AccountChange::Remove => {
                // Handed back first: clearing the unique columns below takes the row's
                // strongest lock, which must not wait on a conversation's writer while
                // holding what that writer waits for.
                let mut details = end_sessions_and_hand_back(&mut tx, user_id).await?;
                let email: String = sqlx::query_scalar(
                    "UPDATE users SET removed_at = now(), disabled_at = COALESCE(disabled_at, now()),
                            password_hash = NULL, api_token_hash = NULL, telegram_user_id = NULL, discord_user_id = NULL
                     WHERE id = $1 RETURNING email",
                )
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
                details["email"] = json!(email);
                details
            }
            AccountChange::Password(_) => {
                sqlx::query(
                    "UPDATE users SET password_hash = $2, failed_logins = 0, locked_until = NULL
                     WHERE id = $1",
                )
                .bind(user_id)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
                let ended = end_sessions(&mut tx, user_id).await?;
                json!({"sessions_ended": ended})
            }
        };
        crate::users::audit_admin(
            &mut *tx,
            tenant_id,
            &actor.audit_name(),
            change.action(),
            ("user", Some(user_id)),
            details,
        )
        .await?;
        tx.commit().await?;
        if matches!(change, AccountChange::Remove) {
            return Ok(Account {
                id: user_id,
                email: String::new(),
                role: current,
                disabled: true,
                locked: false,
                telegram_linked: false,
                created_at: Utc::now(),
            });
        }
        let row: AccountRow = sqlx::query_as(&format!("{SELECT} AND id = $1"))
            .bind(user_id)
            .fetch_one(&self.pool)
            .await?;
        row.try_into()
    }
}

async fn end_sessions(tx: &mut sqlx::PgConnection, user_id: Uuid) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// An account that can no longer act gives up its sessions and the conversations assigned
/// to it, which show in the inbox as nobody's again.
async fn end_sessions_and_hand_back(
    tx: &mut sqlx::PgConnection,
    user_id: Uuid,
) -> Result<serde_json::Value> {
    let sessions = end_sessions(tx, user_id).await?;
    // Their takeovers end too: nobody would answer a conversation held by an account that
    // cannot sign in, so the bot may speak again.
    let conversations = sqlx::query(
        "UPDATE conversations SET assigned_user_id = NULL, operator_active_until = NULL
         WHERE assigned_user_id = $1",
    )
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(json!({"sessions_ended": sessions, "conversations_handed_back": conversations}))
}

impl Store {
    /// One audit line for something the platform admin did to a shop outside the methods
    /// that audit themselves (adding a user, linking a Telegram account).
    pub async fn audit_platform(
        &self,
        tenant_id: Uuid,
        actor: &str,
        action: &str,
        target: (&str, Option<Uuid>),
        details: serde_json::Value,
    ) -> Result<()> {
        crate::users::audit_admin(&self.pool, tenant_id, actor, action, target, details).await
    }
}
