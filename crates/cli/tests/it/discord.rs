//! Discord end to end against the fake Discord: the listener's Gateway session with
//! serenity, the backfill after a cut or a restart, leases between listeners, REST sends
//! through the dispatcher with Discord's limits, and the signed interactions endpoint.

use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::ChannelKind;
use switchboard_fakes::discord::{BOT_ID, FakeDiscord};
use uuid::Uuid;

use crate::helpers::TestApp;

const WAIT: Duration = Duration::from_secs(30);
const CUSTOMER: &str = "3000000000000000001";
const DM: &str = "4000000000000000001";

pub async fn discord_channel(app: &TestApp, fake: &FakeDiscord, extra: Value) -> Uuid {
    let mut config = json!({
        "api_base_url": fake.base_url,
        "application_id": BOT_ID,
        "public_key": hex::encode(signing_key().verifying_key().to_bytes()),
    });
    if let Value::Object(extra) = extra {
        for (k, v) in extra {
            config[k] = v;
        }
    }
    app.add_channel(
        ChannelKind::Discord,
        config,
        json!({"bot_token": "bot-token"}),
    )
    .await
}

fn signing_key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[9u8; 32])
}

#[tokio::test]
async fn a_direct_message_is_answered_once_with_a_nonce() {
    let app = TestApp::spawn().await;
    let fake = FakeDiscord::start().await;
    discord_channel(&app, &fake, json!({})).await;
    fake.wait_identified(1, WAIT).await;
    let id = fake.customer_says(DM, CUSTOMER, "Do you ship to Berlin?", json!({}));
    let sent = fake.wait_bot_messages(DM, 1, WAIT).await;
    app.settled().await;
    assert_eq!(fake.bot_messages(DM).len(), 1, "answered once");
    let post = &fake.calls(&format!("POST /channels/{DM}/messages"))[0].body;
    assert_eq!(post["enforce_nonce"], true);
    assert!(
        post["nonce"]
            .as_str()
            .is_some_and(|n| !n.is_empty() && n.len() <= 25)
    );
    assert_eq!(post["message_reference"]["message_id"], id.as_str());
    assert!(
        sent[0]["content"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("ship")
    );
    // The bot's own message came back over the Gateway and was not taken for a customer's.
    assert_eq!(
        app.count("SELECT count(*) FROM messages WHERE role = 'customer'")
            .await,
        1
    );
}
