//! `switchboard user`: a shop's operator accounts from the command line, with the same
//! rules as the console (the last owner stays). Every change is audited with the actor
//! `cli`.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use switchboard_runtime::Config;
use switchboard_store::{AccountActor, AccountChange, ChatPlatform, DEMO_SLUG};

const ACTOR: &str = "cli";

#[derive(Subcommand)]
pub enum UserAction {
    /// Create a user who signs in to the console and the operator API.
    Add {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, operator or viewer.
        #[arg(long)]
        role: String,
        /// At least 8 characters; SWITCHBOARD_USER_PASSWORD keeps it out of shell history.
        #[arg(long, env = "SWITCHBOARD_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// The shop's accounts, as JSON.
    List {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
    },
    /// Give an account another role.
    SetRole {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// owner, admin, operator or viewer.
        #[arg(long)]
        role: String,
    },
    /// The account signs in no more and its sessions end; its conversations go back to the
    /// shop.
    Disable {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// A disabled account signs in again.
    Enable {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Remove an account for good (what it did stays in the audit log); its address may
    /// be added again.
    Remove {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
    },
    /// Set a new password (a forgotten one): the account's lock and sessions end.
    ResetPassword {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
        #[arg(long, env = "SWITCHBOARD_USER_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Let a Telegram account act for a user in the operators' chat.
    LinkTelegram {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// The numeric Telegram user id (not the username).
        #[arg(long)]
        telegram_user_id: i64,
    },
    /// Let a Discord account act for a user in the operators' Discord room.
    LinkDiscord {
        #[arg(long, default_value = DEMO_SLUG)]
        tenant: String,
        #[arg(long)]
        email: String,
        /// The Discord user id (Developer Mode: right-click the user, Copy User ID).
        #[arg(long)]
        discord_user_id: i64,
    },
}

pub async fn run(config: Config, action: UserAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let tenant_of = |slug: &str| {
        let store = store.clone();
        let slug = slug.to_owned();
        async move {
            store
                .tenant_id(&slug)
                .await
                .with_context(|| format!("tenant {slug:?}"))
        }
    };
    let (tenant, email, change) = match action {
        UserAction::Add {
            tenant,
            email,
            role,
            password,
        } => {
            let tenant_id = tenant_of(&tenant).await?;
            let user = store
                .add_user(tenant_id, &email, role.parse()?, &password)
                .await?;
            store
                .audit_platform(
                    tenant_id,
                    ACTOR,
                    "add_user",
                    ("user", Some(user.id)),
                    json!({"email": user.email, "role": user.role.as_str()}),
                )
                .await?;
            println!("{}", serde_json::to_string_pretty(&user)?);
            return Ok(());
        }
        UserAction::List { tenant } => {
            let accounts = store.accounts(tenant_of(&tenant).await?).await?;
            println!("{}", serde_json::to_string_pretty(&accounts)?);
            return Ok(());
        }
        UserAction::LinkTelegram {
            tenant,
            email,
            telegram_user_id: id,
        } => {
            return link(
                &store,
                &tenant_of(&tenant).await?,
                &email,
                ChatPlatform::Telegram,
                id,
            )
            .await;
        }
        UserAction::LinkDiscord {
            tenant,
            email,
            discord_user_id: id,
        } => {
            return link(
                &store,
                &tenant_of(&tenant).await?,
                &email,
                ChatPlatform::Discord,
                id,
            )
            .await;
        }
        UserAction::SetRole {
            tenant,
            email,
            role,
        } => (tenant, email, AccountChange::Role(role.parse()?)),
        UserAction::Disable { tenant, email } => (tenant, email, AccountChange::Disable),
        UserAction::Enable { tenant, email } => (tenant, email, AccountChange::Enable),
        UserAction::Remove { tenant, email } => (tenant, email, AccountChange::Remove),
        UserAction::ResetPassword {
            tenant,
            email,
            password,
        } => (tenant, email, AccountChange::Password(password)),
    };
    let tenant_id = tenant_of(&tenant).await?;
    let account = store.account_by_email(tenant_id, &email).await?;
    let removing = matches!(change, AccountChange::Remove);
    let changed = store
        .change_account(tenant_id, account.id, change, AccountActor::Platform(ACTOR))
        .await?;
    if removing {
        println!("{email} removed");
    } else {
        println!("{}", serde_json::to_string_pretty(&changed)?);
    }
    Ok(())
}

/// Links a chat account to a user, audited as the CLI's.
async fn link(
    store: &switchboard_store::Store,
    tenant_id: &uuid::Uuid,
    email: &str,
    platform: ChatPlatform,
    id: i64,
) -> anyhow::Result<()> {
    let (action, field, name) = match platform {
        ChatPlatform::Telegram => ("user.link_telegram", "telegram_user_id", "Telegram"),
        ChatPlatform::Discord => ("user.link_discord", "discord_user_id", "Discord"),
    };
    store
        .link_chat_account(*tenant_id, email, platform, id)
        .await?;
    let account = store.account_by_email(*tenant_id, email).await?;
    store
        .audit_platform(
            *tenant_id,
            ACTOR,
            action,
            ("user", Some(account.id)),
            json!({ field: id }),
        )
        .await?;
    println!("{email} now acts from {name} user {id}");
    Ok(())
}
