//! `switchboard channel …`, `switchboard normalize` and `switchboard webhook set`.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use secrecy::ExposeSecret;
use serde_json::json;
use switchboard_channels::{discord, email, telegram, whatsapp};
use switchboard_core::{ChannelKind, ChannelRef, Normalized};
use switchboard_runtime::Config;
use switchboard_store::crypto::Cipher;
use uuid::Uuid;

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Store a channel; its credentials are encrypted with the master key.
    Add(Box<AddArgs>),
    /// List channels, without their credentials.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Stop receiving and sending on a channel.
    Disable { id: Uuid },
    /// Start again.
    Enable { id: Uuid },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PlatformKind {
    Telegram,
    Whatsapp,
    Email,
    Discord,
}

#[derive(Args)]
pub struct AddArgs {
    #[arg(long)]
    tenant: String,
    #[arg(long, value_enum)]
    kind: PlatformKind,
    #[arg(long)]
    name: String,
    /// The platform's API; defaults to the real one. Tests point it at a local fake.
    #[arg(long)]
    api_base_url: Option<String>,
    #[arg(long)]
    bot_token: Option<String>,
    #[arg(long)]
    secret_token: Option<String>,
    /// The bot's @username, to notice mentions in groups.
    #[arg(long)]
    bot_username: Option<String>,
    /// Which group (Telegram) or guild (Discord) messages to read: those that mention the
    /// bot or reply to it (`mention`, the default), `all` or `ignore`.
    #[arg(long, default_value = "mentions")]
    group_mode: String,
    /// Discord: the application's id (the bot user's id too).
    #[arg(long)]
    application_id: Option<String>,
    /// Discord: the application's public key (hex), which signs HTTP interactions.
    #[arg(long)]
    public_key: Option<String>,
    /// Poll getUpdates instead of receiving webhooks.
    #[arg(long)]
    long_polling: bool,
    #[arg(long)]
    phone_number_id: Option<String>,
    #[arg(long)]
    access_token: Option<String>,
    #[arg(long)]
    app_secret: Option<String>,
    #[arg(long)]
    verify_token: Option<String>,
    /// name:language of an approved template for customers outside the 24-hour window.
    #[arg(long)]
    reengagement_template: Option<String>,
    #[arg(long, default_value_t = 80)]
    messages_per_second: u32,
    #[arg(long)]
    imap_host: Option<String>,
    #[arg(long, default_value_t = 993)]
    imap_port: u16,
    /// none, starttls or tls.
    #[arg(long, default_value = "tls")]
    imap_tls: String,
    #[arg(long)]
    imap_user: Option<String>,
    #[arg(long)]
    imap_password: Option<String>,
    #[arg(long, default_value = "INBOX")]
    mailbox: String,
    #[arg(long)]
    smtp_host: Option<String>,
    #[arg(long, default_value_t = 465)]
    smtp_port: u16,
    /// none, starttls or tls.
    #[arg(long, default_value = "tls")]
    smtp_tls: String,
    #[arg(long)]
    smtp_user: Option<String>,
    #[arg(long)]
    smtp_password: Option<String>,
    /// The sender of replies: "Shop Support <support@shop.example>".
    #[arg(long)]
    from: Option<String>,
    /// Mail over this size is stored truncated and handed to an operator.
    #[arg(long, default_value_t = 1024 * 1024)]
    max_bytes: usize,
    /// PEM file of a private CA that signed the mail servers' certificates.
    #[arg(long)]
    tls_ca_file: Option<std::path::PathBuf>,
}

fn need(v: &Option<String>, flag: &str) -> anyhow::Result<String> {
    v.clone()
        .filter(|s| !s.is_empty())
        .with_context(|| format!("{flag} is required"))
}

/// The channel's kind, settings and credentials as they are stored.
pub fn build(a: &AddArgs) -> anyhow::Result<(ChannelKind, serde_json::Value, serde_json::Value)> {
    Ok(match a.kind {
        PlatformKind::Telegram => {
            let config = telegram::Config {
                api_base_url: a
                    .api_base_url
                    .clone()
                    .unwrap_or_else(|| telegram::DEFAULT_API_BASE_URL.into()),
                bot_username: a
                    .bot_username
                    .clone()
                    .map(|u| u.trim_start_matches('@').to_owned()),
                group_mode: serde_json::from_value(json!(a.group_mode)).context("--group-mode")?,
                long_polling: a.long_polling,
            };
            let secrets = telegram::Secrets {
                bot_token: need(&a.bot_token, "--bot-token")?.into(),
                secret_token: need(&a.secret_token, "--secret-token")?.into(),
            };
            (
                ChannelKind::Telegram,
                serde_json::to_value(config)?,
                serde_json::to_value(secrets)?,
            )
        }
        PlatformKind::Whatsapp => {
            let reengagement_template = match &a.reengagement_template {
                Some(t) => {
                    let (name, language) = t
                        .split_once(':')
                        .context("--reengagement-template is name:language")?;
                    Some(whatsapp::Template {
                        name: name.into(),
                        language: language.into(),
                    })
                }
                None => None,
            };
            let config = whatsapp::Config {
                api_base_url: a
                    .api_base_url
                    .clone()
                    .unwrap_or_else(|| whatsapp::DEFAULT_API_BASE_URL.into()),
                phone_number_id: need(&a.phone_number_id, "--phone-number-id")?,
                reengagement_template,
                messages_per_second: a.messages_per_second,
            };
            let secrets = whatsapp::Secrets {
                access_token: need(&a.access_token, "--access-token")?.into(),
                app_secret: need(&a.app_secret, "--app-secret")?.into(),
                verify_token: need(&a.verify_token, "--verify-token")?.into(),
            };
            (
                ChannelKind::Whatsapp,
                serde_json::to_value(config)?,
                serde_json::to_value(secrets)?,
            )
        }
        PlatformKind::Email => {
            let tls = |v: &str, flag: &str| -> anyhow::Result<email::Tls> {
                v.parse()
                    .map_err(anyhow::Error::msg)
                    .context(flag.to_owned())
            };
            let from = need(&a.from, "--from")?;
            let config = email::Config {
                imap_host: need(&a.imap_host, "--imap-host")?,
                imap_port: a.imap_port,
                imap_tls: tls(&a.imap_tls, "--imap-tls")?,
                mailbox: a.mailbox.clone(),
                smtp_host: need(&a.smtp_host, "--smtp-host")?,
                smtp_port: a.smtp_port,
                smtp_tls: tls(&a.smtp_tls, "--smtp-tls")?,
                from: from.clone(),
                max_bytes: a.max_bytes,
                poll_secs: 30,
                command_timeout_secs: 30,
                tls_ca_pem: match &a.tls_ca_file {
                    Some(path) => Some(
                        std::fs::read_to_string(path)
                            .with_context(|| format!("--tls-ca-file {}", path.display()))?,
                    ),
                    None => None,
                },
            };
            config.validate().map_err(anyhow::Error::msg)?;
            let secrets = email::Secrets {
                imap_user: need(&a.imap_user, "--imap-user")?,
                imap_password: need(&a.imap_password, "--imap-password")?.into(),
                smtp_user: a.smtp_user.clone(),
                smtp_password: a.smtp_password.clone().map(Into::into),
            };
            (
                ChannelKind::Email,
                serde_json::to_value(config)?,
                serde_json::to_value(secrets)?,
            )
        }
        PlatformKind::Discord => {
            let application_id = need(&a.application_id, "--application-id")?;
            if !application_id.bytes().all(|b| b.is_ascii_digit()) {
                bail!("--application-id is a Discord id (digits)");
            }
            let public_key = need(&a.public_key, "--public-key")?;
            if hex::decode(&public_key).map_or(true, |k| k.len() != 32) {
                bail!("--public-key is the application's 32-byte public key in hex");
            }
            let config = discord::Config {
                api_base_url: a
                    .api_base_url
                    .clone()
                    .unwrap_or_else(|| discord::DEFAULT_API_BASE_URL.into()),
                application_id,
                public_key,
                group_mode: serde_json::from_value(json!(a.group_mode)).context("--group-mode")?,
                backfill_days: 7,
            };
            let secrets = discord::Secrets {
                bot_token: need(&a.bot_token, "--bot-token")?.into(),
            };
            (
                ChannelKind::Discord,
                serde_json::to_value(config)?,
                serde_json::to_value(secrets)?,
            )
        }
    })
}

pub async fn run(config: Config, cmd: ChannelCommand) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    match cmd {
        ChannelCommand::Add(a) => {
            let (kind, settings, secrets) = build(&a)?;
            let cipher = Cipher::from_base64(&config.security.master_key)?;
            let tenant = store
                .tenant_id(&a.tenant)
                .await
                .with_context(|| format!("tenant {:?}", a.tenant))?;
            let id = store
                .create_channel(
                    tenant,
                    kind,
                    &a.name,
                    &settings,
                    Some(&cipher.encrypt(secrets.to_string().as_bytes())),
                )
                .await?;
            println!("{id}");
            let public = config.server.public_url.trim_end_matches('/');
            match kind {
                ChannelKind::Telegram if !a.long_polling => {
                    println!(
                        "webhook: {public}/webhooks/telegram/{id} (register it with `switchboard webhook set {id}`)"
                    )
                }
                ChannelKind::Whatsapp => println!(
                    "webhook: {public}/webhooks/whatsapp/{id} (enter it in the Meta app dashboard)"
                ),
                ChannelKind::Discord => println!(
                    "a listener connects to the Gateway; to take button presses over HTTP instead, set the interactions endpoint URL to {public}/webhooks/discord/{id} in the developer portal"
                ),
                _ => {}
            }
        }
        ChannelCommand::List { tenant } => {
            let tenant_id = match &tenant {
                Some(t) => Some(store.tenant_id(t).await?),
                None => None,
            };
            println!(
                "{:<36}  {:<10} {:<9} {:<7} name",
                "id", "tenant", "kind", "active"
            );
            for c in store.channels(tenant_id).await? {
                println!(
                    "{:<36}  {:<10} {:<9} {:<7} {}",
                    c.id, c.tenant_slug, c.kind, c.is_active, c.name
                );
            }
        }
        ChannelCommand::Disable { id } => {
            store.set_channel_active(id, false).await?;
            println!("channel {id} disabled");
        }
        ChannelCommand::Enable { id } => {
            store.set_channel_active(id, true).await?;
            println!("channel {id} enabled");
        }
    }
    Ok(())
}

/// `switchboard normalize`: what a raw webhook body becomes, without storing anything.
pub fn normalize(kind: PlatformKind, file: &str) -> anyhow::Result<()> {
    // Raw bytes: a mail need not be UTF-8.
    let body = if file == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read(file).with_context(|| format!("reading {file}"))?
    };
    let ch = ChannelRef {
        tenant_id: Uuid::nil(),
        channel_id: Uuid::nil(),
    };
    let now = chrono::Utc::now();
    let out: Result<Normalized, _> = match kind {
        PlatformKind::Telegram => telegram::inbound::parse(&body).and_then(|u| {
            telegram::inbound::normalize(ch, &telegram::inbound::InboundConfig::default(), &u, now)
        }),
        PlatformKind::Whatsapp => {
            whatsapp::inbound::parse(&body).map(|h| whatsapp::inbound::normalize(ch, &h, now))
        }
        PlatformKind::Discord => discord::inbound::parse_payload(&body).and_then(|p| {
            discord::inbound::normalize_payload(
                ch,
                &discord::inbound::InboundConfig::default(),
                &p,
                now,
            )
        }),
        PlatformKind::Email => {
            let cfg = email::inbound::InboundConfig {
                max_bytes: 1024 * 1024,
                own_domain: String::new(),
            };
            email::inbound::normalize(ch, &cfg, &body, now)
        }
    };
    match out {
        Ok(n) => {
            println!("{}", serde_json::to_string_pretty(&n)?);
            Ok(())
        }
        Err(e) => bail!("rejected: {e}"),
    }
}

/// `switchboard webhook set`: points Telegram at this gateway's webhook for the channel.
pub async fn set_webhook(config: Config, channel: Uuid) -> anyhow::Result<()> {
    let store = crate::store(&config).await?;
    let record = store.channel(channel).await?.context("no such channel")?;
    if record.kind != ChannelKind::Telegram {
        bail!(
            "webhook set is for Telegram channels; WhatsApp webhooks are set in the Meta app dashboard"
        );
    }
    let cipher = Cipher::from_base64(&config.security.master_key)?;
    let settings: telegram::Config = serde_json::from_value(record.config.clone())?;
    let secrets: telegram::Secrets = serde_json::from_value(record.secrets(&cipher)?)?;
    let adapter = telegram::outbound::TelegramAdapter::new(
        switchboard_http::client(),
        &secrets.bot_token,
        &settings.api_base_url,
    )
    .map_err(anyhow::Error::msg)?;
    let url = format!(
        "{}/webhooks/telegram/{channel}",
        config.server.public_url.trim_end_matches('/')
    );
    adapter
        .set_webhook(&url, secrets.secret_token.expose_secret(), 40)
        .await?;
    println!("webhook set: {url}");
    Ok(())
}
