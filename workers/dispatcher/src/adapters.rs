//! The adapters this process sends through: one per channel, built from the channel's
//! settings and decrypted credentials, and rebuilt when either changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use switchboard_channels::discord::outbound::DiscordAdapter;
use switchboard_channels::email::outbound::EmailAdapter;
use switchboard_channels::telegram::outbound::TelegramAdapter;
use switchboard_channels::webchat::outbound::WebchatAdapter;
use switchboard_channels::whatsapp::outbound::WhatsappAdapter;
use switchboard_channels::{discord, email, telegram, whatsapp};
use switchboard_core::{ChannelAdapter, ChannelKind};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChannelInfo, RedisLiveFeed};

/// A channel's adapter, with what the dispatcher needs beyond the trait.
#[derive(Clone)]
pub struct Built {
    pub adapter: Arc<dyn ChannelAdapter>,
    /// WhatsApp: the adapter again, for templates, and the re-engagement template.
    pub whatsapp: Option<(Arc<WhatsappAdapter>, Option<whatsapp::Template>)>,
    /// Telegram: the adapter again, for operator notifications with buttons.
    pub telegram: Option<Arc<TelegramAdapter>>,
    /// Discord: the adapter again, for operator notifications with buttons.
    pub discord: Option<Arc<DiscordAdapter>>,
}

pub struct Adapters {
    http: reqwest::Client,
    cipher: Option<Cipher>,
    webchat: Arc<dyn ChannelAdapter>,
    built: Mutex<HashMap<uuid::Uuid, (String, Built)>>,
}

impl Adapters {
    pub fn new(s: &Services) -> Self {
        Self {
            http: switchboard_http::client(),
            cipher: Cipher::from_base64(&s.config.security.master_key).ok(),
            webchat: Arc::new(WebchatAdapter::new(Arc::new(RedisLiveFeed::new(
                s.redis.clone(),
            )))),
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The adapter for `ch`, or why there is none (missing or undecryptable credentials,
    /// unsupported kind): a permanent failure for the row.
    pub fn get(&self, ch: &ChannelInfo) -> Result<Built, String> {
        if ch.kind == ChannelKind::Webchat {
            return Ok(Built {
                adapter: self.webchat.clone(),
                whatsapp: None,
                telegram: None,
                discord: None,
            });
        }
        // The fingerprint changes with the settings or the credentials.
        let fingerprint = format!("{}|{:?}", ch.config, ch.credentials);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((f, b)) = built.get(&ch.id)
            && *f == fingerprint
        {
            return Ok(b.clone());
        }
        let b = self.build(ch)?;
        built.insert(ch.id, (fingerprint, b.clone()));
        Ok(b)
    }

    fn build(&self, ch: &ChannelInfo) -> Result<Built, String> {
        let cipher = self
            .cipher
            .as_ref()
            .ok_or("no master key is configured to decrypt channel credentials")?;
        let blob = ch
            .credentials
            .as_deref()
            .ok_or("the channel has no credentials")?;
        let secrets = cipher.decrypt(blob).map_err(|e| e.to_string())?;
        match ch.kind {
            ChannelKind::Telegram => {
                let cfg: telegram::Config =
                    serde_json::from_value(ch.config.clone()).map_err(|e| e.to_string())?;
                let sec: telegram::Secrets =
                    serde_json::from_slice(&secrets).map_err(|e| e.to_string())?;
                let a = Arc::new(TelegramAdapter::new(
                    self.http.clone(),
                    &sec.bot_token,
                    &cfg.api_base_url,
                )?);
                Ok(Built {
                    adapter: a.clone(),
                    whatsapp: None,
                    telegram: Some(a),
                    discord: None,
                })
            }
            ChannelKind::Whatsapp => {
                let cfg: whatsapp::Config =
                    serde_json::from_value(ch.config.clone()).map_err(|e| e.to_string())?;
                let sec: whatsapp::Secrets =
                    serde_json::from_slice(&secrets).map_err(|e| e.to_string())?;
                let a = Arc::new(WhatsappAdapter::new(
                    self.http.clone(),
                    &cfg,
                    &sec.access_token,
                ));
                Ok(Built {
                    adapter: a.clone(),
                    whatsapp: Some((a, cfg.reengagement_template)),
                    telegram: None,
                    discord: None,
                })
            }
            ChannelKind::Email => {
                let cfg: email::Config =
                    serde_json::from_value(ch.config.clone()).map_err(|e| e.to_string())?;
                let sec: email::Secrets =
                    serde_json::from_slice(&secrets).map_err(|e| e.to_string())?;
                Ok(Built {
                    adapter: Arc::new(EmailAdapter::new(&cfg, &sec)?),
                    whatsapp: None,
                    telegram: None,
                    discord: None,
                })
            }
            ChannelKind::Discord => {
                let cfg: discord::Config =
                    serde_json::from_value(ch.config.clone()).map_err(|e| e.to_string())?;
                let sec: discord::Secrets =
                    serde_json::from_slice(&secrets).map_err(|e| e.to_string())?;
                let a = Arc::new(DiscordAdapter::new(
                    self.http.clone(),
                    &cfg.api_base_url,
                    &sec.bot_token,
                ));
                Ok(Built {
                    adapter: a.clone(),
                    whatsapp: None,
                    telegram: None,
                    discord: Some(a),
                })
            }
            other => Err(format!(
                "this dispatcher cannot send on {other} channels yet"
            )),
        }
    }
}
