//! Fetches a support mailbox over IMAP. New mail is found with IDLE (renewed every 29
//! minutes) or, on servers without it, by polling. Each mail is queued durably before the
//! cursor (UIDVALIDITY, last UID) moves past it, so a crash loses nothing, and a mail
//! fetched twice is recognised by its Message-ID. A changed UIDVALIDITY means the UIDs
//! mean something else now: the unread mail is read again and Message-IDs keep old mail
//! from being answered twice.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
use secrecy::ExposeSecret;
use switchboard_channels::email;
use switchboard_core::envelope::INBOUND_MESSAGE;
use switchboard_core::{ChannelRef, Envelope, error_chain};
use switchboard_runtime::Services;
use switchboard_store::crypto::Cipher;
use switchboard_store::{ChannelLease, ChannelRecord};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Whether the server announced new mail (`EXISTS`, `RECENT`) alongside an earlier
/// command's answer. Mail that arrives while the listener catches up is announced then, not
/// to the IDLE that follows, which would otherwise wait for the next mail, or the renewal
/// half an hour later, before the mail is seen. (The fault suite found one waiting so.)
fn announced_new_mail(session: &Session<Conn>) -> bool {
    let mut announced = false;
    while let Ok(r) = session.unsolicited_responses.try_recv() {
        announced |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    announced
}

/// How long one IDLE waits before the listener looks for itself. Servers drop an IDLE
/// after 30 minutes (RFC 2177 asks for renewal before that), but a much shorter wait also
/// bounds the delay of a mail that arrived between the last search and the IDLE command:
/// its EXISTS can come back with the IDLE's own start, where it does not wake the wait.
/// (The fault suite saw a mailbox wait so in CI.) A catch-up a minute costs one search.
const IDLE_RENEW: Duration = Duration::from_secs(60);

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}
type Conn = Box<dyn Io>;

/// `fut` within `limit`, the channel's `command_timeout_secs`: a server that stops
/// answering a connection or a command is given up on, and the session starts again with
/// backoff. IDLE waits longer on purpose, and has its own renewal time.
async fn bounded<T, E: Into<PollError>>(
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, PollError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| {
            PollError::Other(format!(
                "the server did not answer within {}s",
                limit.as_secs()
            ))
        })?
        .map_err(Into::into)
}

#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

pub struct Poller {
    s: Services,
    /// Cursor writes carry it, and are refused once another listener holds the channel.
    lease: ChannelLease,
    channel: ChannelRef,
    config: email::Config,
    secrets: email::Secrets,
}

impl Poller {
    pub fn new(
        s: &Services,
        record: &ChannelRecord,
        cipher: &Cipher,
        lease: ChannelLease,
    ) -> Result<Self, String> {
        let (channel, config, secrets) = crate::decode(record, cipher)?;
        Ok(Self {
            s: s.clone(),
            lease,
            channel,
            config,
            secrets,
        })
    }

    pub async fn run(self, stop: CancellationToken) {
        let span = tracing::info_span!("imap", tenant_id = %self.channel.tenant_id, channel_id = %self.channel.channel_id);
        async {
            tracing::info!("mailbox watch started");
            let mut backoff = Duration::from_secs(1);
            while !stop.is_cancelled() {
                let result = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = self.session(&mut backoff) => r,
                };
                if let Err(e) = result {
                    tracing::warn!(error = %error_chain(&e), retry_in_ms = backoff.as_millis() as u64, "mailbox connection failed");
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        .instrument(span)
        .await
    }

    async fn connect(&self) -> Result<Session<Conn>, PollError> {
        let c = &self.config;
        let tcp = TcpStream::connect((c.imap_host.as_str(), c.imap_port)).await?;
        let stream: Conn = match c.imap_tls {
            email::Tls::None => Box::new(tcp),
            email::Tls::Tls => Box::new(tls(c, tcp).await?),
            email::Tls::Starttls => {
                let mut client = async_imap::Client::new(tcp);
                greeting(&mut client).await?;
                client.run_command_and_check_ok("STARTTLS", None).await?;
                Box::new(tls(c, client.into_inner()).await?)
            }
        };
        let mut client = async_imap::Client::new(stream);
        if c.imap_tls != email::Tls::Starttls {
            greeting(&mut client).await?;
        }
        client
            .login(
                &self.secrets.imap_user,
                self.secrets.imap_password.expose_secret(),
            )
            .await
            .map_err(|(e, _)| PollError::Imap(e))
    }

    fn limit(&self) -> Duration {
        Duration::from_secs(self.config.command_timeout_secs.max(1))
    }

    /// One connection: catch up, then wait for news, until the connection fails.
    async fn session(&self, backoff: &mut Duration) -> Result<(), PollError> {
        let mut session = bounded(self.limit(), self.connect()).await?;
        let mailbox = bounded(self.limit(), session.select(&self.config.mailbox)).await?;
        let validity = mailbox
            .uid_validity
            .ok_or_else(|| PollError::Other("the server sent no UIDVALIDITY".into()))?;
        let idle = bounded(self.limit(), session.capabilities())
            .await?
            .has_str("IDLE");
        *backoff = Duration::from_secs(1);
        loop {
            self.catch_up(&mut session, validity).await?;
            if announced_new_mail(&session) {
                continue;
            }
            if idle {
                let mut handle = session.idle();
                bounded(self.limit(), handle.init()).await?;
                let (wait, _interrupt) = handle.wait_with_timeout(IDLE_RENEW);
                match wait.await? {
                    IdleResponse::NewData(_) => tracing::debug!("the mailbox changed"),
                    IdleResponse::Timeout | IdleResponse::ManualInterrupt => {}
                }
                session = bounded(self.limit(), handle.done()).await?;
            } else {
                tokio::time::sleep(Duration::from_secs(self.config.poll_secs.max(1))).await;
                bounded(self.limit(), session.noop()).await?;
            }
        }
    }

    /// Queues every mail past the cursor, oldest first, moving the cursor after each (after
    /// the whole pass on a first sync).
    async fn catch_up(&self, session: &mut Session<Conn>, validity: u32) -> Result<(), PollError> {
        let store = &self.s.store;
        let cursor = store
            .imap_cursor(self.channel.channel_id)
            .await
            .map_err(|e| PollError::Other(error_chain(&e)))?;
        // On a first sync, the highest UID the mailbox held before its unread mail was
        // searched: everything up to it is dealt with by this pass (queued if unread, left
        // alone if read), and anything above it is new mail for the next pass.
        let mut first_sync_upto = None;
        let mut uids: Vec<u32> = match cursor {
            Some((v, last)) if v == validity => bounded(
                self.limit(),
                session.uid_search(format!("UID {}:*", last.saturating_add(1))),
            )
            .await?
            .into_iter()
            .filter(|u| *u > last)
            .collect(),
            other => {
                if other.is_some() {
                    tracing::warn!("UIDVALIDITY changed: reading the unread mail again");
                }
                // A mailbox met for the first time (or renumbered): its unread mail is
                // what still waits for an answer; read mail was dealt with elsewhere. The
                // highest UID is taken once, before the unread search, and that search is
                // bounded by it: a mail arriving in between is above it and found next
                // pass, instead of being skipped by a cursor taken after the search.
                let highest = bounded(self.limit(), session.uid_search("ALL"))
                    .await?
                    .into_iter()
                    .max()
                    .unwrap_or(0);
                first_sync_upto = Some(highest);
                if highest == 0 {
                    Vec::new()
                } else {
                    bounded(
                        self.limit(),
                        session.uid_search(format!("UID 1:{highest} UNSEEN")),
                    )
                    .await?
                    .into_iter()
                    .filter(|u| *u <= highest)
                    .collect()
                }
            }
        };
        uids.sort_unstable();
        for &uid in &uids {
            self.queue(session, uid).await?;
            // A first sync moves the cursor once, at its end: a cursor left at a queued
            // mail would make the next pass, after an interruption, fetch and answer the
            // read mail above it. An interrupted first sync is simply done again: what it
            // queued is marked read by then, and a mail queued twice is recognised by its
            // Message-ID.
            if first_sync_upto.is_none() {
                self.move_cursor(validity, uid).await?;
            }
        }
        if let Some(highest) = first_sync_upto {
            // Recorded even when nothing was unread, so later mail is found by UID.
            self.move_cursor(validity, highest).await?;
        }
        Ok(())
    }

    async fn move_cursor(&self, validity: u32, uid: u32) -> Result<(), PollError> {
        self.s
            .store
            .set_imap_cursor(self.channel.tenant_id, &self.lease, validity, uid)
            .await
            .map_err(|e| PollError::Other(error_chain(&e)))
    }

    /// Fetches one mail and publishes it with a broker confirm. A mail that cannot be
    /// read as a mail is logged with the reason and stepped over.
    async fn queue(&self, session: &mut Session<Conn>, uid: u32) -> Result<(), PollError> {
        let raw: Option<Vec<u8>> = {
            // No more than the size limit is read, and one byte more to tell that the mail
            // was longer (normalize then marks it truncated): a 50 MB attachment costs no
            // 50 MB here. A mail may still be large and the link slow: its fetch gets
            // twenty times a command's time, so that it is read rather than retried for ever.
            let partial = format!("BODY.PEEK[]<0.{}>", self.config.inbound().max_bytes + 1);
            let fetches: Vec<_> = bounded(self.limit() * 20, async {
                session
                    .uid_fetch(uid.to_string(), &partial)
                    .await?
                    .try_collect()
                    .await
            })
            .await?;
            fetches.iter().find_map(|f| f.body().map(<[u8]>::to_vec))
        };
        let Some(raw) = raw else {
            tracing::warn!(uid, "the server returned no body; stepped over");
            return Ok(());
        };
        let n = match email::inbound::normalize(
            self.channel,
            &self.config.inbound(),
            &raw,
            chrono::Utc::now(),
        ) {
            Ok(n) => n,
            Err(e) => {
                metrics::counter!("sb_inbound_total", "channel" => "email", "result" => "rejected")
                    .increment(1);
                tracing::warn!(uid, error = %e, "mail rejected");
                return Ok(());
            }
        };
        for ev in &n.events {
            let env = Envelope::new(INBOUND_MESSAGE, ev.tenant_id, ev.channel_id, ev);
            let body = serde_json::to_vec(&env).map_err(|e| PollError::Other(e.to_string()))?;
            self.s
                .publisher
                .publish(switchboard_bus::INBOUND, &body)
                .await
                .map_err(|e| {
                    PollError::Other(format!("queueing the mail failed: {}", error_chain(&e)))
                })?;
            metrics::counter!("sb_inbound_total", "channel" => "email", "result" => "queued")
                .increment(1);
            self.s.activity.done(1);
            tracing::info!(uid, provider_event_id = %ev.provider_event_id, "mail queued");
        }
        // Marked read once queued, so people sharing the mailbox see what was taken, and a
        // resync reads only what is still waiting. A failure here loses nothing.
        let marked = async {
            let updates: Vec<_> = session
                .uid_store(uid.to_string(), "+FLAGS.SILENT (\\Seen)")
                .await?
                .try_collect()
                .await?;
            Ok::<_, async_imap::error::Error>(updates.len())
        };
        match tokio::time::timeout(self.limit(), marked).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::debug!(uid, error = %e, "could not mark the mail read"),
            // The command's answer may still come and would be read as the next one's: the
            // session is dropped and started again.
            Err(_) => {
                return Err(PollError::Other(
                    "the server did not answer marking a mail read".into(),
                ));
            }
        }
        Ok(())
    }
}

async fn greeting(client: &mut async_imap::Client<impl Io>) -> Result<(), PollError> {
    client.read_response().await?.ok_or_else(|| {
        PollError::Other("the server closed the connection before greeting".into())
    })?;
    Ok(())
}

/// TLS to the IMAP server, trusting the public web roots and the channel's private CA.
async fn tls(
    c: &email::Config,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, PollError> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(pem) = &c.tls_ca_pem {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert =
                cert.map_err(|e| PollError::Other(format!("the CA file is unusable: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| PollError::Other(format!("the CA file is unusable: {e}")))?;
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| PollError::Other(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(c.imap_host.clone())
        .map_err(|e| PollError::Other(format!("bad IMAP host name: {e}")))?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Dovecot's IMAPS port, with a certificate signed by the test CA (`.ci/mail-servers`).
    fn imaps(ca: Option<String>) -> email::Config {
        email::Config {
            imap_host: "127.0.0.1".into(),
            imap_port: 10993,
            imap_tls: email::Tls::Tls,
            mailbox: "INBOX".into(),
            smtp_host: "127.0.0.1".into(),
            smtp_port: 10465,
            smtp_tls: email::Tls::Tls,
            from: "Shop <support@shop.example>".into(),
            max_bytes: 1000,
            poll_secs: 30,
            command_timeout_secs: 30,
            tls_ca_pem: ca,
        }
    }

    #[tokio::test]
    async fn the_imap_server_certificate_must_chain_to_a_trusted_root() {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.ci/mail-servers");
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let connect = || TcpStream::connect(("127.0.0.1", 10993));

        let untrusted = tls(&imaps(None), connect().await.unwrap()).await;
        let err = untrusted.map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("certificate"), "{err}");

        let ca = std::fs::read_to_string("/var/lib/switchboard-mail/tls/ca.pem").unwrap();
        let trusted = tls(&imaps(Some(ca)), connect().await.unwrap()).await;
        assert!(trusted.is_ok(), "{:?}", trusted.map(|_| ()));
    }
}
