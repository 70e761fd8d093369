//! A shop's catalogue and knowledge through the operator API: a shop system keeps products
//! live with its API token, operators read, admins edit and delete.

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard_store::Role;

use crate::helpers::TestApp;
use crate::operators::{other_tenant, sign_in};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = app
        .http
        .request(method, format!("{}/api/v1{path}", app.base))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_shop_system_keeps_products_live_with_its_api_token() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    let (token, system) = app
        .services
        .store
        .add_api_token(demo, "shop system", "test")
        .await
        .unwrap();
    let put = |body: Value| call(&app, Method::PUT, "/products/LAMP-9", &system, Some(body));

    let lamp = json!({"name": "Blue desk lamp", "description": "A steel desk lamp",
                      "price": 19.5, "stock": 3, "attributes": {"colour": "blue"}});
    let (status, p) = put(lamp.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{p}");
    assert_eq!(p["price"], "19.50");
    assert_eq!(p["currency"], "EUR", "the shop's currency");
    assert_eq!(p["attributes"]["colour"], "blue");
    assert_eq!(put(lamp.clone()).await.0, StatusCode::OK);
    let (status, err) = put(json!({"sku": "OTHER", "name": "x", "price": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("sku"), "{err}");
    let (status, err) = put(json!({"name": "x", "price": -1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("price"), "{err}");

    let (status, p) = call(
        &app,
        Method::PATCH,
        "/products/LAMP-9",
        &system,
        Some(json!({"stock": 0})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["stock"], 0);
    assert_eq!(p["name"], "Blue desk lamp");
    let (status, _) = call(
        &app,
        Method::PATCH,
        "/products/NOPE",
        &system,
        Some(json!({"stock": 1})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        Method::PATCH,
        "/products/LAMP-9",
        &system,
        Some(json!({"stock": -2})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = call(&app, Method::DELETE, "/products/LAMP-9", &system, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a token does not delete");

    // Operators read, and retrieval finds the product by its attribute.
    let op = sign_in(&app, demo, "op@demo.example", Role::Operator).await;
    let (status, list) = call(&app, Method::GET, "/products", &op.token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|p| p["sku"] == "LAMP-9")
    );
    let (status, _) = put_as(&app, &op.token, &lamp).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, found) = call(
        &app,
        Method::GET,
        "/knowledge/search?q=blue%20lamp",
        &op.token,
        None,
    )
    .await;
    assert_eq!(found[0]["reference"], "product:LAMP-9", "{found}");

    // Another shop's token sees none of it; a revoked or made-up token nothing at all.
    let other = other_tenant(&app).await;
    let (_, theirs) = app
        .services
        .store
        .add_api_token(other, "theirs", "test")
        .await
        .unwrap();
    let (status, _) = call(&app, Method::GET, "/products/LAMP-9", &theirs, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.services
        .store
        .revoke_api_token(demo, token.id, "test")
        .await
        .unwrap();
    assert_eq!(put(lamp.clone()).await.0, StatusCode::UNAUTHORIZED);
    let (status, _) = call(&app, Method::GET, "/products", "sbk_made-up", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let actors: Vec<String> =
        sqlx::query_scalar("SELECT actor_id FROM audit_events WHERE action = 'product.put'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        actors,
        [format!("api-token:{}", token.id)],
        "one change, by the token"
    );
}

async fn put_as(app: &TestApp, token: &str, body: &Value) -> (StatusCode, Value) {
    call(
        app,
        reqwest::Method::PUT,
        "/products/LAMP-9",
        token,
        Some(body.clone()),
    )
    .await
}

#[tokio::test]
async fn operators_read_the_knowledge_base_and_admins_edit_it() {
    use reqwest::Method;
    let app = TestApp::spawn().await;
    let demo = app.services.store.tenant_id("demo").await.unwrap();
    let op = sign_in(&app, demo, "op@demo.example", Role::Operator).await;
    let admin = sign_in(&app, demo, "admin@demo.example", Role::Admin).await;
    let (status, docs) = call(&app, Method::GET, "/documents", &op.token, None).await;
    assert_eq!(status, StatusCode::OK);
    let returns = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["title"] == "Returns and refunds")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/documents/{returns}");
    let edit = json!({"title": "Returns", "body": "Return anything within 60 days."});
    let (status, _) = call(&app, Method::PUT, &path, &op.token, Some(edit.clone())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, doc) = call(&app, Method::PUT, &path, &admin.token, Some(edit)).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    let (_, doc) = call(&app, Method::GET, &path, &op.token, None).await;
    assert_eq!(doc["body"], "Return anything within 60 days.");
    let (_, found) = call(
        &app,
        Method::GET,
        "/knowledge/search?q=return%2060%20days",
        &op.token,
        None,
    )
    .await;
    assert_eq!(found[0]["reference"], format!("doc:{returns}"), "{found}");
    assert_eq!(
        call(&app, Method::DELETE, &path, &op.token, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, Method::DELETE, &path, &admin.token, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::GET, &path, &op.token, None).await.0,
        StatusCode::NOT_FOUND
    );

    // A document written by hand: admins only, a title and a body needed.
    let faq = json!({"title": "Do you gift wrap?", "body": "Yes, in recycled paper, for 3 EUR."});
    let (status, _) = call(
        &app,
        Method::POST,
        "/documents",
        &op.token,
        Some(faq.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(
        &app,
        Method::POST,
        "/documents",
        &admin.token,
        Some(json!({"title": " ", "body": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, added) = call(&app, Method::POST, "/documents", &admin.token, Some(faq)).await;
    assert_eq!(status, StatusCode::CREATED, "{added}");
    let (_, found) = call(
        &app,
        Method::GET,
        "/knowledge/search?q=gift%20wrap",
        &op.token,
        None,
    )
    .await;
    assert_eq!(
        found[0]["reference"],
        format!("doc:{}", added["id"].as_str().unwrap()),
        "{found}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'kb.add'")
            .await,
        1
    );
}
