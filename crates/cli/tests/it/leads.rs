//! Leads: contact details a customer gives in the web chat land on their customer record,
//! operators correct them (and a later capture leaves the correction alone), admins export
//! them as CSV, and nothing is captured after a STOP.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_core::Lead;
use switchboard_store::Role;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::operators::sign_in;

const VISITOR: &str = "lead-visitor-7f3a9c2e";

async fn lead_of(app: &TestApp, conversation: Uuid) -> Value {
    sqlx::query_scalar(
        "SELECT cu.lead FROM customers cu JOIN conversations c ON c.customer_id = cu.id
         WHERE c.id = $1",
    )
    .bind(conversation)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Posts a web-chat message and waits until it was handled and everything it scheduled is
/// done.
async fn say(app: &TestApp, id: &str, text: &str) {
    app.post_chat(VISITOR, id, text).await;
    app.handled(&format!("{VISITOR}:{id}"), 1).await;
    app.settled().await;
}

#[tokio::test]
async fn a_customers_details_become_a_lead_operators_correct_and_admins_export() {
    let app = TestApp::spawn().await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    say(
        &app,
        "c1",
        "Hi, my name is Anna Schmidt from Lichtwerk GmbH. We need 40 ceramic mugs for our \
         new office. Reach me at anna@lichtwerk.example or call +49 30 1234 5678.",
    )
    .await;
    let conversation: Uuid = sqlx::query_scalar("SELECT id FROM conversations")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        lead_of(&app, conversation).await,
        json!({"name": "Anna Schmidt", "company": "Lichtwerk GmbH",
               "email": "anna@lichtwerk.example", "phone": "+49 30 1234 5678",
               "interest": "40 ceramic mugs for our new office"})
    );

    let op = sign_in(&app, demo, "op@demo.example", Role::Operator).await;
    let viewer = sign_in(&app, demo, "viewer@demo.example", Role::Viewer).await;
    let admin = sign_in(&app, demo, "admin@demo.example", Role::Admin).await;
    let (status, conv) = op
        .get(&format!("/api/v1/conversations/{conversation}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(conv["customer"]["lead"]["email"], "anna@lichtwerk.example");

    let path = format!("/api/v1/conversations/{conversation}/lead");
    let correction = json!({"name": "Anna Schmidt-Berg", "phone": null});
    assert_eq!(
        viewer
            .send(Method::PATCH, &path, Some(correction.clone()))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    let (status, err) = op
        .send(Method::PATCH, &path, Some(json!({"age": "41"})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("age"), "{err}");
    let (status, lead) = op.send(Method::PATCH, &path, Some(correction)).await;
    assert_eq!(status, StatusCode::OK, "{lead}");
    assert_eq!(lead["name"], "Anna Schmidt-Berg");
    assert!(lead.get("phone").is_none(), "{lead}");

    // A later capture fills what is missing but leaves the operator's fields alone.
    say(
        &app,
        "c2",
        "Sorry, I'm Anna Meyer actually. My number is +49 40 555 0000 and I work for Meyer Licht. \
         I also wrote to support@shop.example.",
    )
    .await;
    let lead = lead_of(&app, conversation).await;
    assert_eq!(lead["name"], "Anna Schmidt-Berg", "corrected, so kept");
    assert!(
        lead.get("phone").is_none(),
        "cleared by the operator, so kept: {lead}"
    );
    assert_eq!(
        lead["company"], "Meyer Licht",
        "the customer's newer word wins where no operator corrected: {lead}"
    );
    assert_eq!(lead["email"], "anna@lichtwerk.example", "{lead}");

    // The export: admins only, CSV, one row per customer with a lead.
    assert_eq!(op.get("/api/v1/leads").await.0, StatusCode::FORBIDDEN);
    let res = app
        .http
        .get(format!("{}/api/v1/leads", app.base))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    let mut rows = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = rows.headers().unwrap().iter().map(str::to_owned).collect();
    let records: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 1, "{csv}");
    let field = |name: &str| {
        let i = header.iter().position(|h| h == name).unwrap();
        records[0][i].to_owned()
    };
    assert_eq!(field("name"), "Anna Schmidt-Berg");
    assert_eq!(field("email"), "anna@lichtwerk.example");
    assert_eq!(field("phone"), "");
    assert_eq!(field("channel"), "webchat");
    assert_eq!(field("conversation_id"), conversation.to_string());
    for action in ["lead.correct", "leads.export"] {
        assert_eq!(
            app.count(&format!(
                "SELECT count(*) FROM audit_events WHERE action = '{action}'"
            ))
            .await,
            1,
            "{action}"
        );
    }
    // The same export from the command line, audited as the CLI's.
    let (ok, out, err) =
        crate::cli::switchboard(&["leads", "export", "--tenant", "demo"], &app.config).await;
    assert!(ok, "{err}");
    assert_eq!(out, csv, "the CLI prints what the API serves");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE action = 'leads.export' AND actor_id = 'cli'"
        )
        .await,
        1
    );

    // After a STOP nothing more is captured, whatever the customer writes.
    say(&app, "c3", "STOP").await;
    assert_eq!(
        app.count("SELECT count(*) FROM consents WHERE status = 'revoked'")
            .await,
        1
    );
    say(
        &app,
        "c4",
        "Hi, I'm Anna. My email is anna.new@example.org, call me on +49 89 123 4567.",
    )
    .await;
    let before = lead_of(&app, conversation).await;
    assert_eq!(before["email"], "anna@lichtwerk.example");
    // (What follows checks the store's own guard, whatever the worker did.)
    let captured = app
        .services
        .store
        .capture_lead(
            demo,
            conversation,
            &Lead {
                email: Some("anna.new@example.org".into()),
                ..Lead::default()
            },
        )
        .await
        .unwrap();
    assert!(!captured, "a revoked customer's lead is not written");
    assert_eq!(lead_of(&app, conversation).await, before);
}
