//! Operator accounts and their sign-in sessions. Passwords are argon2 hashes; session
//! tokens are random and stored only as SHA-256 digests.

use std::str::FromStr;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Result, Store, StoreError};

/// Failed sign-ins in a row that lock an account.
pub const MAX_FAILED_LOGINS: i32 = 5;
const LOCK_MINUTES: i64 = 15;
const SESSION_HOURS: i64 = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Operator,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    /// Everyone but a viewer may act on conversations.
    pub fn may_act(self) -> bool {
        self != Role::Viewer
    }

    /// Owners and admins change settings and manage users.
    pub fn may_administer(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl FromStr for Role {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "viewer" => Ok(Role::Viewer),
            other => Err(StoreError::Invalid(format!(
                "unknown role {other:?}: use owner, admin, operator or viewer"
            ))),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub email: String,
    pub role: Role,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: Uuid,
    tenant_id: Uuid,
    email: String,
    role: String,
}

impl UserRow {
    fn user(self) -> Result<User> {
        Ok(User {
            id: self.id,
            tenant_id: self.tenant_id,
            email: self.email,
            role: self
                .role
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("role {}", self.role)))?,
        })
    }
}

/// A signed-in user, as the API sees a request.
#[derive(Debug, Clone)]
pub struct Session {
    pub id: Uuid,
    pub user: User,
    pub csrf_token: String,
}

/// A new session: the token is shown once, here.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: Session,
}

#[derive(Debug)]
pub enum Login {
    Ok(NewSession),
    /// Wrong email or password, or an account locked after repeated failures: none of
    /// them is told apart, so nobody learns which addresses have accounts.
    Refused,
    /// The password opens accounts of this address in several shops: the sign-in must
    /// name the shop. Only someone who knows the password learns this.
    ChooseTenant,
}

pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Hashing is deliberately slow, so it runs off the async threads.
pub(crate) async fn hash_password(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| StoreError::Invalid(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| StoreError::Corrupt(format!("hashing task failed: {e}")))?
}

async fn verify_password(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        // Unknown users are checked against a throwaway hash, so both take as long.
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        PasswordHash::new(&hash).is_ok_and(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}

/// Passwords checked per sign-in, real or throwaway: addresses with accounts in up to this
/// many shops take as long to admit or refuse as unknown ones.
const SIGN_IN_CHECKS: usize = 3;

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$3DJ6MFbvR3Nvyu8ELV5kDhcbqt4GJhXQjEOc2hgsJTA";

/// Refuses a password that is short or easy to guess.
pub(crate) fn check_password(email: &str, password: &str) -> Result<()> {
    if password.chars().count() < 8 {
        return Err(StoreError::Invalid(
            "the password needs at least 8 characters".into(),
        ));
    }
    // zxcvbn's estimate, with the address's own words counted as guessable: "password",
    // "12345678" and the like score 0 or 1 and are refused.
    let local = email.split('@').next().unwrap_or_default();
    let strength = zxcvbn::zxcvbn(password, &[local, email]);
    if (strength.score() as u8) < 2 {
        let hint = strength
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(": {w}"))
            .unwrap_or_default();
        return Err(StoreError::Invalid(format!(
            "the password is too easy to guess{hint}; use a few unrelated words"
        )));
    }
    Ok(())
}

impl Store {
    pub async fn add_user(
        &self,
        tenant_id: Uuid,
        email: &str,
        role: Role,
        password: &str,
    ) -> Result<User> {
        let email = email.trim().to_lowercase();
        if !email.contains('@') {
            return Err(StoreError::Invalid(format!(
                "{email:?} is not an email address"
            )));
        }
        check_password(&email, password)?;
        let hash = hash_password(password.to_owned()).await?;
        let id = Uuid::now_v7();
        let res = sqlx::query(
            "INSERT INTO users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(tenant_id)
        .bind(&email)
        .bind(role.as_str())
        .bind(hash)
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(User {
                id,
                tenant_id,
                email,
                role,
            }),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::Invalid(
                format!("this shop has a user with the email {email} already"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Links a chat account (Telegram or Discord) to an operator, so their button presses
    /// and replies in the operators' room count as theirs.
    pub async fn link_chat_account(
        &self,
        tenant_id: Uuid,
        email: &str,
        platform: ChatPlatform,
        account_id: i64,
    ) -> Result<()> {
        let done = sqlx::query(&format!(
            "UPDATE users SET {} = $3 WHERE tenant_id = $1 AND email = $2 AND removed_at IS NULL",
            platform.column()
        ))
        .bind(tenant_id)
        .bind(email.trim().to_lowercase())
        .bind(account_id)
        .execute(&self.pool)
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                StoreError::Conflict("that chat account is linked to another user already".into())
            }
            e => e.into(),
        })?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "user" });
        }
        Ok(())
    }

    /// The working account linked to a chat account.
    pub async fn user_by_chat_account(
        &self,
        tenant_id: Uuid,
        platform: ChatPlatform,
        account_id: i64,
    ) -> Result<Option<User>> {
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "SELECT id, tenant_id, email, role FROM users
             WHERE tenant_id = $1 AND {} = $2 AND disabled_at IS NULL",
            platform.column()
        ))
        .bind(tenant_id)
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(UserRow::user).transpose()
    }

    /// Checks the password, counting failures: after `MAX_FAILED_LOGINS` in a row an
    /// account is locked for a while, whatever password comes next. Each attempt is
    /// counted before its password is checked, in one statement, so attempts made at once
    /// check no more passwords than that; a success clears the count but not a lock that
    /// failures made meanwhile.
    ///
    /// An address may have accounts in several shops. With `tenant_id` only that shop's
    /// is tried; without, every one, and the one the password opens is signed in (when it
    /// opens several, the caller must say which shop: `Login::ChooseTenant`).
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        tenant_id: Option<Uuid>,
    ) -> Result<Login> {
        let email = email.trim().to_lowercase();
        #[derive(sqlx::FromRow)]
        struct Row {
            id: Uuid,
            tenant_id: Uuid,
            email: String,
            role: String,
            password_hash: Option<String>,
        }
        // An account whose attempts ran out without a lock (an attempt cut short between
        // its count and its verdict) is locked now, so the lock runs out again.
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = now() + $3 * interval '1 minute'
             WHERE email = $1 AND failed_logins >= $2 AND locked_until IS NULL",
        )
        .bind(&email)
        .bind(MAX_FAILED_LOGINS)
        .bind(LOCK_MINUTES as f64)
        .execute(&self.pool)
        .await?;
        let rows: Vec<Row> = sqlx::query_as(
            "UPDATE users SET failed_logins = failed_logins + 1
             WHERE email = $1 AND ($3::uuid IS NULL OR tenant_id = $3) AND failed_logins < $2
               AND (locked_until IS NULL OR locked_until <= now()) AND disabled_at IS NULL
             RETURNING id, tenant_id, email, role, password_hash",
        )
        .bind(&email)
        .bind(MAX_FAILED_LOGINS)
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        // Checked even when there is nothing to check against, so that an unknown or a
        // locked account takes as long to refuse as a wrong password.
        // As many passwords checked for an unknown address as for one with accounts in
        // several shops: the time a sign-in takes does not tell how many shops know it.
        for _ in rows.len()..SIGN_IN_CHECKS {
            verify_password(password.to_owned(), None).await;
        }
        if rows.is_empty() {
            // No attempt left (or locked, or unknown): refused without locking anything,
            // so that correct sign-ins made at once never lock an account; the lock is set
            // by verified failures alone.
            return Ok(Login::Refused);
        }
        let (mut opened, mut missed) = (Vec::new(), Vec::new());
        for row in rows {
            if verify_password(password.to_owned(), row.password_hash.clone()).await {
                opened.push(row);
            } else {
                missed.push(row.id);
            }
        }
        if opened.is_empty() {
            for id in missed {
                self.lock_if_exhausted(id).await?;
            }
            return Ok(Login::Refused);
        }
        // The password opened an account: no account of the address counts this attempt
        // as a failure (it was meant for the one it opened).
        let ids: Vec<Uuid> = opened.iter().map(|r| r.id).chain(missed).collect();
        sqlx::query(
            "UPDATE users SET failed_logins = GREATEST(failed_logins - 1, 0) WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&self.pool)
        .await?;
        if opened.len() > 1 {
            return Ok(Login::ChooseTenant);
        }
        let row = opened.remove(0);
        let cleared = sqlx::query(
            "UPDATE users SET failed_logins = 0
             WHERE id = $1 AND (locked_until IS NULL OR locked_until <= now())",
        )
        .bind(row.id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if cleared == 0 {
            return Ok(Login::Refused);
        }
        let user = UserRow {
            id: row.id,
            tenant_id: row.tenant_id,
            email: row.email,
            role: row.role,
        }
        .user()?;
        let token = random_token();
        let session = Session {
            id: Uuid::now_v7(),
            user,
            csrf_token: random_token(),
        };
        // Only while the account still has the password that was checked and may sign in:
        // a reset, a disable or a removal that committed meanwhile wins.
        let opened = sqlx::query(
            "INSERT INTO sessions (id, tenant_id, user_id, token_hash, csrf_token, expires_at)
             SELECT $1, $2, $3, $4, $5, now() + $6 * interval '1 hour' FROM users
             WHERE id = $3 AND password_hash = $7 AND disabled_at IS NULL AND removed_at IS NULL
             FOR SHARE",
        )
        .bind(session.id)
        .bind(session.user.tenant_id)
        .bind(session.user.id)
        .bind(token_hash(&token))
        .bind(&session.csrf_token)
        .bind(SESSION_HOURS as f64)
        .bind(&row.password_hash)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if opened == 0 {
            return Ok(Login::Refused);
        }
        Ok(Login::Ok(NewSession { token, session }))
    }

    /// Locks the account once failures used up its attempts, starting the count afresh
    /// for when the lock ends.
    async fn lock_if_exhausted(&self, id: Uuid) -> Result<()> {
        sqlx::query(
            "UPDATE users SET failed_logins = 0, locked_until = now() + $3 * interval '1 minute'
             WHERE id = $1 AND failed_logins >= $2",
        )
        .bind(id)
        .bind(MAX_FAILED_LOGINS)
        .bind(LOCK_MINUTES as f64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live session a bearer token or cookie names, if any.
    pub async fn session(&self, token: &str) -> Result<Option<Session>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            session_id: Uuid,
            csrf_token: String,
            id: Uuid,
            tenant_id: Uuid,
            email: String,
            role: String,
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT s.id AS session_id, s.csrf_token, u.id, u.tenant_id, u.email, u.role
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
               AND u.disabled_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let user = UserRow {
            id: r.id,
            tenant_id: r.tenant_id,
            email: r.email,
            role: r.role,
        }
        .user()?;
        Ok(Some(Session {
            id: r.session_id,
            user,
            csrf_token: r.csrf_token,
        }))
    }

    pub async fn logout(&self, session_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
            .bind(session_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Writes one audit line for what `actor` did in their tenant.
    pub async fn audit(
        &self,
        actor: &User,
        action: &str,
        target_type: &str,
        target_id: Option<Uuid>,
        details: serde_json::Value,
    ) -> Result<()> {
        audit(&self.pool, actor, action, target_type, target_id, details).await
    }
}

/// Writes one audit line for what an admin did from the command line or the admin API.
pub(crate) async fn audit_admin<'e, E: sqlx::PgExecutor<'e>>(
    db: E,
    tenant_id: Uuid,
    actor: &str,
    action: &str,
    target: (&str, Option<Uuid>),
    details: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details)
         VALUES ($1, $2, 'admin', $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(tenant_id)
    .bind(actor)
    .bind(action)
    .bind(target.0)
    .bind(target.1)
    .bind(details)
    .execute(db)
    .await?;
    Ok(())
}

pub(crate) async fn audit<'e, E: sqlx::PgExecutor<'e>>(
    db: E,
    actor: &User,
    action: &str,
    target_type: &str,
    target_id: Option<Uuid>,
    details: serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (id, tenant_id, actor_type, actor_id, action, target_type, target_id, details)
         VALUES ($1, $2, 'user', $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(actor.tenant_id)
    .bind(actor.id.to_string())
    .bind(action)
    .bind(target_type)
    .bind(target_id)
    .bind(details)
    .execute(db)
    .await?;
    Ok(())
}

/// Where an operators' room lives, and so which account id identifies an operator there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatPlatform {
    Telegram,
    Discord,
}

impl ChatPlatform {
    fn column(self) -> &'static str {
        match self {
            ChatPlatform::Telegram => "telegram_user_id",
            ChatPlatform::Discord => "discord_user_id",
        }
    }
}
