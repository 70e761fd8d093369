//! `switchboard tenant`: the platform admin's shops. A new tenant gets a web-chat channel
//! and the defaults of every setting; a disabled one's channels answer 404 and nothing of
//! it is drafted. Changes are audited with the actor `cli`.

use clap::Subcommand;
use switchboard_runtime::Config;
use switchboard_store::NewTenant;

#[derive(Subcommand)]
pub enum TenantAction {
    /// Create a tenant with a web-chat channel and default settings.
    Add {
        /// Lower-case letters, digits and dashes: the tenant's name in URLs (`/chat/<slug>`).
        #[arg(long)]
        slug: String,
        /// The shop's name, shown in the web chat.
        #[arg(long)]
        name: String,
        /// BCP 47 language tag of the shop's replies.
        #[arg(long, default_value = "en")]
        language: String,
        /// IANA time zone of the working hours.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// ISO 4217 currency of the catalogue's prices.
        #[arg(long, default_value = "EUR")]
        currency: String,
    },
    /// Every tenant, as JSON.
    List,
    /// One tenant, as JSON.
    Show {
        slug: String,
    },
    /// Its channels answer 404 and nothing is drafted until it is enabled again.
    Disable {
        slug: String,
    },
    Enable {
        slug: String,
    },
}

pub async fn run(config: Config, action: TenantAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let out = match action {
        TenantAction::Add {
            slug,
            name,
            language,
            timezone,
            currency,
        } => serde_json::to_value(
            store
                .add_tenant(
                    &NewTenant {
                        slug,
                        name,
                        language,
                        timezone,
                        currency,
                    },
                    "cli",
                )
                .await?,
        )?,
        TenantAction::List => serde_json::to_value(store.tenants().await?)?,
        TenantAction::Show { slug } => serde_json::to_value(store.tenant(&slug).await?)?,
        TenantAction::Disable { slug } => {
            serde_json::to_value(store.set_tenant_enabled(&slug, false, "cli").await?)?
        }
        TenantAction::Enable { slug } => {
            serde_json::to_value(store.set_tenant_enabled(&slug, true, "cli").await?)?
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[derive(Subcommand)]
pub enum TokenAction {
    /// A new API token for the tenant's own systems (a shop keeping stock and prices live
    /// through `PUT`/`PATCH /api/v1/products/{sku}`). The token is printed once.
    Add {
        #[arg(long)]
        tenant: String,
        /// What uses it, such as "shop system".
        #[arg(long)]
        name: String,
    },
    List {
        #[arg(long)]
        tenant: String,
    },
    Revoke {
        #[arg(long)]
        tenant: String,
        id: uuid::Uuid,
    },
}

pub async fn token(config: Config, action: TokenAction) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let out = match action {
        TokenAction::Add { tenant, name } => {
            let (token, secret) = store
                .add_api_token(
                    crate::shop_cmd::tenant(&store, &tenant).await?,
                    &name,
                    "cli",
                )
                .await?;
            serde_json::json!({"token": secret, "id": token.id, "name": token.name,
                               "note": "shown once: keep it in the shop system's secrets"})
        }
        TokenAction::List { tenant } => serde_json::to_value(
            store
                .api_tokens(crate::shop_cmd::tenant(&store, &tenant).await?)
                .await?,
        )?,
        TokenAction::Revoke { tenant, id } => {
            store
                .revoke_api_token(crate::shop_cmd::tenant(&store, &tenant).await?, id, "cli")
                .await?;
            serde_json::json!({"revoked": id})
        }
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
